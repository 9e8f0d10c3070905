"""Applications: drafts, prefill, materials, submission, the case state machine and timeline."""
