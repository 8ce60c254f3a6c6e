"""MADO imaging study manifests: read, validate, convert, create, and plan retrievals.

Pure apart from reading and writing files and its parsing worker processes
(:mod:`mado.sandbox`): no aiohttp or asyncio import anywhere in the package. Modules, one
concept each:

``model``        the one manifest model (frozen dataclasses)
``vocab``        SOP classes, codes and FHIR URLs the formats use
``normalise``    OID prefixes, placeholder URLs, DICOM ↔ FHIR dates and times
``kos_reader`` / ``kos_writer``     DICOM KOS manifest ↔ model
``kos_library``  the KOS's SR content: coded items and the TID 1600 Image Library
``fhir_reader`` / ``fhir_writer``   FHIR Bundle manifest ↔ model
``fhir_json``    defensive accessors for FHIR JSON (wrong types read as absent)
``load``         files → model (format sniffing), model → files
``guard``        parsing limits checked on the raw bytes (inflation, nesting, counts)
``sandbox``      the worker processes every manifest is parsed in (memory, time)
``jobs``         what those workers run: read, validate, convert, create, read notes
``regions``      Body Part Examined → CID IHE-MADO1 Target Regions
``validate``     MADO content requirements → :class:`~mado.report.Report`, with the rule
                 tables in ``validate_kos`` (attributes), ``validate_sr`` (content tree) and
                 ``validate_fhir``, and the finding collector in ``checks``
``convert``      KOS ↔ FHIR
``kin``          Key Image Notes (KOS instances) → key-image flags
``create``       Content Creator: WADO-RS metadata → KOS manifest
``plan``         retrieval plans (whole study, series, key images)
``cli``          ``manifest validate|convert|create`` subcommands
``errors``       the package's one error tree
"""

__all__: list[str] = []
