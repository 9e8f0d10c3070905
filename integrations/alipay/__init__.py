"""Alipay identity verification (支付宝身份验证): RSA2 helpers, client, simulator and its control client."""
