"""The citizen's e-certificate wallet: list, show, present as a QR code (亮证), verify."""
