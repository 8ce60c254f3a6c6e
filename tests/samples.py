"""Where the real MADO sample manifests are: copied, with their attribution, from the MADO
specification's sources (see ``data/mado-samples/README.md``) so the suite runs from any clone."""

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "data" / "mado-samples"
KOS_SAMPLE = SAMPLES / "MADO_KOS_A.dcm"
FHIR_SAMPLE = SAMPLES / "mado-1.2.250.1.59.40211.22756022.2.1.101-bundle.json"
