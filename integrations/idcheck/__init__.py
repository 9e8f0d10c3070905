"""Public-security ID two-element check (公安身份二要素核验): client, simulator and shared signing."""
