"""XC-WADO Retrieve [RAD-160] for both gateway roles (MADO Rev 1.1 Appendix XA).

Read in this order: :mod:`.handler` (parse, resolve, relay), :mod:`.authority` (our public
URL), :mod:`.border` (which URLs are the source's and what they become), :mod:`.metadata`
(which answers are metadata), :mod:`.rewrite` with :mod:`.spelling`, :mod:`.metafields` and
:mod:`.xmlnormal` (metadata rewritten as it streams) and :mod:`.answer_headers` (no header
names the source).
"""
