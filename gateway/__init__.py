"""mado-gateway: a cross-community imaging gateway (IHE XC-WADO, XCA-I, MADO)."""

__version__ = "0.1.0"
