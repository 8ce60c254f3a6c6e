"""The DICOMweb → XCA-I bridge as values: a RAD-160 request as DocumentRequests and a
TransferSyntaxUIDList (gateway.protocols.xca.webrequest), and the RAD-75/RAD-69 answer as an
HTTP status (gateway.protocols.xca.fromweb.Sent). xcai-digest.md §8.1, §8.3; items 30-33."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import (
    BridgeFailed,
    InstanceListRequired,
    NoInstanceAccepted,
    ResourceNotBridgeable,
    problem_for,
)
from gateway.exchange import Exchange
from gateway.manifestcache import ListedInstance
from gateway.protocols.xca.fromweb import Sent, carrier_for, group_for
from gateway.protocols.xca.model import DocumentResponse, ErrorCode, RegistryError, Status
from gateway.protocols.xca.outcomes import (
    PARTIAL_WARNING,
    TRANSFER_SYNTAX_CONTEXT,
    WADO_TRANSFER_SYNTAX_CODE,
    status_for,
)
from gateway.protocols.xca.plan import Carrier
from gateway.protocols.xca.results import GroupAnswer
from gateway.protocols.xca.webrequest import (
    NOT_BRIDGEABLE,
    documents_for,
    error_summary,
    transfer_syntaxes,
)
from gateway.settings import ANY_TRANSFER_SYNTAXES
from routing.errors import UnsupportedTransferSyntax
from routing.rad160 import Rad160Request, ResourceKind, parse_rad160
from routing.upstream import Protocol, Upstream

HCID = "1.3.6.1.4.1.21367.13.70.3"
RLUID = "1.3.6.1.4.1.21367.13.70.3.200"
STUDY, SERIES, SOP = "1.2.3.4", "1.2.3.4.1", "1.2.3.4.1.7"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
RAD75 = Upstream(name="community-c", protocol=Protocol.RAD_75, base_urls=("http://c/xcai",))
RAD69 = Upstream(name="ids-soap", protocol=Protocol.RAD_69, base_urls=("http://ids/xcai",))


def rad160(tail: str, hcid: str = f"urn:oid:{HCID}", rluid: str = RLUID) -> Rad160Request:
    return parse_rad160(f"homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/{tail}")


def listed(*pairs: tuple[str, str]) -> list[ListedInstance]:
    return [ListedInstance(series, sop, RLUID) for series, sop in pairs]


# -- item 30: an instance-level RAD-160 is one DocumentRequest ----------------------------


@pytest.mark.xcai(30)
@pytest.mark.parametrize("rluid", [RLUID, f"urn:oid:{RLUID}", f"oid:{RLUID}"])
def test_an_instance_is_one_document_request(rluid: str) -> None:
    request = rad160(f"studies/{STUDY}/series/{SERIES}/instances/{SOP}", rluid=rluid)
    (document,) = documents_for(request, None) or ()
    assert document.home_community_id == f"urn:oid:{HCID}"
    assert document.repository_id == RLUID  # the bare OID
    assert (document.study_uid, document.series_uid, document.document_uid) == (
        STUDY,
        SERIES,
        SOP,
    )


@pytest.mark.xcai(30)
def test_an_instance_ignores_any_listed_instances() -> None:
    request = rad160(f"studies/{STUDY}/series/{SERIES}/instances/{SOP}")
    documents = documents_for(request, listed((SERIES, "1.2.3.4.1.8"), (SERIES, "1.2.3.4.1.9")))
    assert [d.document_uid for d in documents or ()] == [SOP]


@pytest.mark.xcai(30)
def test_the_group_goes_to_the_upstream_by_its_protocol() -> None:
    request = rad160(f"studies/{STUDY}/series/{SERIES}/instances/{SOP}")
    documents = documents_for(request, None)
    assert documents is not None
    group = group_for(RAD75, request, documents)
    assert (group.carrier, group.upstream, group.documents) == (Carrier.RAD_75, RAD75, documents)
    assert group.home_community_id == HCID
    assert carrier_for(RAD69) is Carrier.RAD_69
    assert Carrier.RAD_69.transaction == "RAD-69"
    with pytest.raises(ValueError, match="does not speak"):
        carrier_for(Upstream(name="w", protocol=Protocol.WADO_RS, base_urls=("http://w/",)))


# -- item 31: the Accept in q order becomes the TransferSyntaxUIDList ------------------------


def syntaxes(*accept: str) -> tuple[str, ...]:
    return transfer_syntaxes(list(accept), any_syntax=ANY_TRANSFER_SYNTAXES)


@pytest.mark.xcai(31)
def test_no_accept_or_no_transfer_syntax_is_explicit_vr_little_endian() -> None:
    assert syntaxes() == (EXPLICIT,)
    assert syntaxes('multipart/related; type="application/dicom"') == (EXPLICIT,)
    assert syntaxes("*/*") == (EXPLICIT,)


@pytest.mark.xcai(31)
def test_the_accept_list_in_q_order() -> None:
    accept = (
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}; q=0.5, '
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LS}, '
        f'multipart/related; type="application/dicom"; transfer-syntax={J2K}; q=0.9'
    )
    assert syntaxes(accept) == (JPEG_LS, J2K, EXPLICIT)
    # two header fields are one list
    assert syntaxes(
        f'multipart/related; type="application/dicom"; transfer-syntax={J2K}; q=0.4',
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LS}',
    ) == (JPEG_LS, J2K)


@pytest.mark.xcai(31)
def test_any_transfer_syntax_is_the_configured_list() -> None:
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    assert syntaxes(accept) == ANY_TRANSFER_SYNTAXES
    assert transfer_syntaxes([accept], any_syntax=(J2K,)) == (J2K,)


@pytest.mark.xcai(31)
def test_syntaxes_dicomweb_cannot_carry_are_left_out_or_refused() -> None:
    implicit = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'
    assert syntaxes(f"{implicit}, multipart/related; transfer-syntax={J2K}; q=0.2") == (J2K,)
    with pytest.raises(UnsupportedTransferSyntax):
        syntaxes(implicit)


@pytest.mark.xcai(31)
def test_an_accept_without_an_instance_range_gives_nothing() -> None:
    assert syntaxes("application/dicom+json") == ()
    assert syntaxes('multipart/related; type="application/octet-stream"') == ()
    problem = problem_for(NoInstanceAccepted("community-c"))
    assert (problem.status, problem.slug) == (406, "not-acceptable")


@pytest.mark.xcai(31)
@given(
    st.lists(
        st.tuples(st.sampled_from((EXPLICIT, JPEG_LS, J2K, "1.2.840.10008.1.2.4.50")),
                  st.integers(min_value=1, max_value=1000)),
        min_size=1,
        max_size=6,
    )
)
def test_any_q_weights_give_each_syntax_once_heaviest_first(
    ranges: list[tuple[str, int]],
) -> None:
    accept = ", ".join(
        f'multipart/related; type="application/dicom"; transfer-syntax={uid}; q={q / 1000:.3f}'
        for uid, q in ranges
    )
    got = syntaxes(accept)
    assert len(got) == len(set(got)) == len({uid for uid, _ in ranges})
    best = {uid: max(q for u, q in ranges if u == uid) for uid, _ in ranges}
    weights = [best[uid] for uid in got]
    assert weights == sorted(weights, reverse=True)


# -- item 32: study and series levels need a list ---------------------------------------------


@pytest.mark.xcai(32)
@pytest.mark.parametrize("tail", [f"studies/{STUDY}", f"studies/{STUDY}/series/{SERIES}"])
def test_study_and_series_without_a_list_are_not_bridged(tail: str) -> None:
    assert documents_for(rad160(tail), None) is None
    assert documents_for(rad160(tail), []) is None


@pytest.mark.xcai(32)
def test_a_listed_study_is_one_request_per_instance_in_list_order() -> None:
    instances = listed((SERIES, "1.2.3.4.1.1"), ("1.2.3.4.2", "1.2.3.4.2.1"), (SERIES, SOP))
    documents = documents_for(rad160(f"studies/{STUDY}"), instances)
    assert documents is not None
    assert [(d.series_uid, d.document_uid) for d in documents] == [
        (i.series_uid, i.sop_instance_uid) for i in instances
    ]
    assert {d.study_uid for d in documents} == {STUDY}
    assert {d.repository_id for d in documents} == {RLUID}
    assert {d.home_community_id for d in documents} == {f"urn:oid:{HCID}"}


@pytest.mark.xcai(32)
def test_the_refusal_names_why_and_what_to_do() -> None:
    problem = problem_for(InstanceListRequired("study", "community-c"))
    assert (problem.status, problem.slug) == (409, "instance-list-required")
    assert "community-c" in problem.detail
    assert "cannot list the instances of a study" in problem.detail
    assert "instance-level" in problem.detail and "/mado/retrieve" in problem.detail


@pytest.mark.parametrize("kind", sorted(NOT_BRIDGEABLE))
def test_every_resource_but_instances_is_refused_naming_why(kind: ResourceKind) -> None:
    assert ResourceKind.INSTANCES not in NOT_BRIDGEABLE
    problem = problem_for(ResourceNotBridgeable(kind.value, "community-c"))
    assert (problem.status, problem.slug) == (501, "not-bridgeable")
    assert problem.detail.startswith(f"{kind.value} cannot be retrieved from upstream community-c")
    assert "whole instances only" in problem.detail


# -- item 33: the answer's status is the HTTP status ------------------------------------------


def sent(returned: int, errors: list[RegistryError], requested: int = 3) -> Sent:
    request = rad160(f"studies/{STUDY}")
    instances = listed(*((SERIES, f"{SERIES}.{n}") for n in range(1, requested + 1)))
    documents = documents_for(request, instances)
    assert documents is not None
    group = group_for(RAD75, request, documents)
    answered = tuple(
        DocumentResponse(
            home_community_id=f"urn:oid:{HCID}",
            repository_id=RLUID,
            document_uid=d.document_uid,
            content_id=f"doc{n}",
        )
        for n, d in enumerate(documents[:returned])
    )
    answer = GroupAnswer(upstream=RAD75.name, documents=answered, errors=tuple(errors))
    exchange = Exchange(request_id="r", method="GET", path="/", client=None)
    leg = exchange.open_leg(RAD75.name)
    status = status_for(requested, returned, errors)
    return Sent(group=group, answer=answer, leg=leg, documents=answered, status=status)


def missing(code: str = ErrorCode.DOCUMENT_UNIQUE_ID, context: str = "not held") -> RegistryError:
    return RegistryError(code=code, context=context, location=f"urn:oid:{HCID}")


@pytest.mark.xcai(33)
def test_success_is_200() -> None:
    assert sent(3, []).http() == (200, None)


@pytest.mark.xcai(33)
def test_partial_success_is_206_with_a_warning() -> None:
    answer = sent(2, [missing()])
    assert answer.status is Status.PARTIAL_SUCCESS
    assert answer.http() == (206, PARTIAL_WARNING)
    assert PARTIAL_WARNING.startswith("299 ")


@pytest.mark.xcai(33)
def test_failure_is_404_naming_the_codes_not_the_peers_words() -> None:
    answer = sent(0, [missing(context="secret peer text"), missing(), missing("XDSWeird")])
    assert answer.failed and answer.http() == (404, None)
    failure = answer.failure()
    problem = problem_for(failure)
    assert (problem.status, problem.slug) == (404, "not-found")
    assert "XDSDocumentUniqueIdError (2), other" in problem.detail
    assert "secret" not in problem.detail and "XDSWeird" not in problem.detail


@pytest.mark.xcai(33)
def test_failure_of_transfer_syntax_only_is_406() -> None:
    errors = [
        missing(ErrorCode.REPOSITORY, f"Document x: {TRANSFER_SYNTAX_CONTEXT}"),
        missing(WADO_TRANSFER_SYNTAX_CODE, "no"),
    ]
    failure = sent(0, errors, requested=2).failure()
    assert isinstance(failure, BridgeFailed)
    assert (failure.status, failure.slug) == (406, "transfer-syntax-unavailable")


@pytest.mark.xcai(33)
def test_an_unavailable_community_is_502() -> None:
    failure = sent(0, [missing(ErrorCode.UNAVAILABLE_COMMUNITY)] * 3).failure()
    assert (failure.status, failure.slug) == (502, "upstream-unavailable")


def test_error_summary_counts_in_order_of_appearance() -> None:
    errors = [missing("XDSRepositoryBusy"), missing(), missing("x:y"), missing()]
    assert error_summary(errors) == (
        "XDSRepositoryBusy",
        "XDSDocumentUniqueIdError (2)",
        "other",
    )
