"""Shared pieces of the Tencent Cloud API 3.0 protocol (signing, error envelope)."""
