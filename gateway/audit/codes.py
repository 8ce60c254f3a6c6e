"""Coded values used in DICOM audit messages (PS3.15 A.5.1 ``CodedValueType``).

Codes come from PS3.16: CID 400 (audit event IDs), CID 401 (event type codes), CID 402 (role
IDs), CID 403 (security alert types), CID 404 (participant object ID types); RFC 3881 for
the Patient Number and URI ID types; IHE BALP for the request id. IHE transactions are coded
in the ``IHE Transactions`` scheme, as IHE audit messages do.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APPLICATION",
    "APPLICATION_ACTIVITY",
    "APPLICATION_LAUNCHER",
    "APPLICATION_START",
    "APPLICATION_STOP",
    "AUDIT_RECORDING_STARTED",
    "AUDIT_RECORDING_STOPPED",
    "BEGIN_TRANSFERRING",
    "DESTINATION_ROLE",
    "INSTANCES_ACCESSED",
    "INSTANCES_TRANSFERRED",
    "NODE_AUTHENTICATION",
    "PATIENT_NUMBER",
    "RAD_69",
    "RAD_75",
    "RAD_107",
    "RAD_160",
    "SECURITY_ALERT",
    "SECURITY_CONFIGURATION",
    "SOURCE_ROLE",
    "STUDY_INSTANCE_UID",
    "URI",
    "USE_OF_RESTRICTED_FUNCTION",
    "X_REQUEST_ID",
    "Code",
]


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: ``csd-code``, ``codeSystemName`` and ``originalText`` (display text)."""

    code: str
    scheme: str
    text: str


def _dcm(code: str, text: str) -> Code:
    return Code(code, "DCM", text)


# CID 400: audit event IDs.
APPLICATION_ACTIVITY = _dcm("110100", "Application Activity")
BEGIN_TRANSFERRING = _dcm("110102", "Begin Transferring DICOM Instances")
INSTANCES_ACCESSED = _dcm("110103", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = _dcm("110104", "DICOM Instances Transferred")
SECURITY_ALERT = _dcm("110113", "Security Alert")

# CID 401: event type codes of Application Activity.
APPLICATION_START = _dcm("110120", "Application Start")
APPLICATION_STOP = _dcm("110121", "Application Stop")

# CID 403: security alert types.
NODE_AUTHENTICATION = _dcm("110126", "Node Authentication")
SECURITY_CONFIGURATION = _dcm("110129", "Security Configuration")
USE_OF_RESTRICTED_FUNCTION = _dcm("110132", "Use of Restricted Function")
AUDIT_RECORDING_STOPPED = _dcm("110133", "Audit Recording Stopped")
AUDIT_RECORDING_STARTED = _dcm("110134", "Audit Recording Started")

# CID 402: active participant roles.
APPLICATION = _dcm("110150", "Application")
APPLICATION_LAUNCHER = _dcm("110151", "Application Launcher")
DESTINATION_ROLE = _dcm("110152", "Destination Role ID")
SOURCE_ROLE = _dcm("110153", "Source Role ID")

# CID 404 and RFC 3881: participant object ID types.
STUDY_INSTANCE_UID = _dcm("110180", "Study Instance UID")
PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
URI = Code("12", "RFC-3881", "URI")

# IHE BALP (ITI Basic Audit Log Patterns) names the HTTP request id an entity of its own,
# type ``XrequestId`` of its BasicAuditEntityType code system; the DICOM form of an entity
# is a participant object, so the same code is its ID type here.
X_REQUEST_ID = Code(
    "XrequestId",
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
    "HTTP X-Request-ID",
)

# IHE transactions (RAD TF-2/3 and the XC-WADO supplement; RAD-69 and RAD-75 as IHE audit
# messages name them, xcai-digest.md §2.11).
RAD_69 = Code("RAD-69", "IHE Transactions", "Retrieve Imaging Document Set")
RAD_75 = Code("RAD-75", "IHE Transactions", "Cross Gateway Retrieve Imaging Document Set")
RAD_160 = Code("RAD-160", "IHE Transactions", "Cross-Community WADO-RS Retrieve")
RAD_107 = Code("RAD-107", "IHE Transactions", "WADO-RS Retrieve")
