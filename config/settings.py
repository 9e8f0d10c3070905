"""Configuration classes chosen by YIWANG_ENV; every value can come from the environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development defaults. Production refuses to start while any of these is still in use.
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_DATA_KEYS = "dev1:ZGV2LWRhdGEta2V5LTAwMQ=="  # 16-byte SM4 key, development only
DEFAULT_LOOKUP_HASH_KEY = "dev-lookup-hash-key"
DEFAULT_WECHAT_SECRET = "sim-wechat-secret"
DEFAULT_TENCENT_SECRET_KEY = "sim-tencent-secret-key"
DEFAULT_IDCHECK_APP_SECRET = "sim-idcheck-app-secret-0000000000"
DEFAULT_JPUSH_MASTER_SECRET = "sim-jpush-master-secret"
DEFAULT_HUAWEI_APP_SECRET = "sim-huawei-app-secret"
DEFAULT_SMS_RECEIPT_TOKEN = "sim-sms-receipt-token"
DEFAULT_PROVINCE_SECRET = "sim-province-secret-000000000000"
DEFAULT_PROVINCE_SM4_KEY = "70726f76696e63652d73696d2d6b6579"  # 16 bytes hex, development only
# Development SM2 key pairs (hex; public keys are x||y without the 04 prefix).
DEFAULT_PROVINCE_SM2_PRIVATE_KEY = "794ea74517626d61f2b51d6459a812dc5d197219299e30d51d5c3a4a1b4366c8"
DEFAULT_PROVINCE_SM2_PUBLIC_KEY = (
    "93b67d08aed69f7146cff8b59d28c2f728f6866d87d33d48dd6dbdca8c59e6bd"
    "c66657997a739893626972bd3a362c469ee34adf5ddce8694049b2c9b17867cd"
)
DEFAULT_PROVINCE_PEER_SM2_PRIVATE_KEY = "118ea058597e65512c736e7835e6dcd61e47b9a6350fc4b317fafe848358e40f"
DEFAULT_PROVINCE_PEER_SM2_PUBLIC_KEY = (
    "f58c8ae13eba123fe282a9ea6b4e694c991bfdd5feb281823f44d3d04b0e32fa"
    "a16b28d6a20914f325e8035d8a69b6efb8663cba13299d40a8533cd5a6aaad03"
)


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. production with development secrets)."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


class BaseConfig:
    """Values shared by every environment; each reads its environment variable."""

    ENV_NAME = "base"

    def __init__(self) -> None:
        self.INSTANCE_DIR = Path(_env("YIWANG_INSTANCE_DIR", str(PROJECT_ROOT / "instance")))
        self.SECRET_KEY = _env("SECRET_KEY", DEFAULT_SECRET_KEY)
        self.DATABASE_URL = _env("DATABASE_URL") or f"sqlite:///{self.INSTANCE_DIR / 'yiwang.db'}"
        # Two per gunicorn thread (4 by default): a submission takes its case-number serial on a
        # second connection (domain/applications/case_numbers.py). Fewer makes the pool open and
        # close overflow connections, a new PostgreSQL backend each time.
        self.DATABASE_POOL_SIZE = _int("DATABASE_POOL_SIZE", 8)
        self.REDIS_URL = _env("REDIS_URL")  # None → embedded Redis in the instance folder
        self.LOG_LEVEL = _env("LOG_LEVEL", "INFO")
        self.LOG_JSON = _env("LOG_JSON", "1") == "1"
        # The app's own JSON line per request. gunicorn.conf.py turns it off when gunicorn writes
        # its JSON access line (which then carries the account id), so each request logs once.
        self.ACCESS_LOG = _env("APP_ACCESS_LOG", "1") == "1"
        self.TRUSTED_PROXY_HOPS = _int("TRUSTED_PROXY_HOPS", 0)
        self.PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:8000")

        # Personal-data encryption: "kid:base64key,kid2:base64key"; the active kid encrypts.
        self.DATA_KEYS = _env("DATA_KEYS", DEFAULT_DATA_KEYS)
        self.DATA_KEY_ACTIVE = _env("DATA_KEY_ACTIVE") or self.DATA_KEYS.split(",")[0].split(":")[0]
        self.LOOKUP_HASH_KEY = _env("LOOKUP_HASH_KEY", DEFAULT_LOOKUP_HASH_KEY)

        # Tokens.
        self.JWT_ISSUER = _env("JWT_ISSUER", "https://yiwang.example.gov.cn")
        self.JWT_AUDIENCE = _env("JWT_AUDIENCE", "yiwang-api")
        self.JWT_ADMIN_AUDIENCE = _env("JWT_ADMIN_AUDIENCE", "yiwang-admin")
        # Third-party apps (OAuth 2.0): access tokens are short; a code lives at most a minute.
        self.OAUTH_ACCESS_TOKEN_TTL = _int("OAUTH_ACCESS_TOKEN_TTL", 600)
        self.OAUTH_REFRESH_TOKEN_TTL = _int("OAUTH_REFRESH_TOKEN_TTL", 30 * 86400)
        self.OAUTH_CODE_TTL = min(60, _int("OAUTH_CODE_TTL", 60))
        self.ACCESS_TOKEN_TTL = _int("ACCESS_TOKEN_TTL", 900)
        self.REFRESH_TOKEN_TTL = _int("REFRESH_TOKEN_TTL", 30 * 86400)
        self.SESSION_MAX_AGE = _int("SESSION_MAX_AGE", 90 * 86400)
        self.SIGNING_KEY_CACHE_SECONDS = _int("SIGNING_KEY_CACHE_SECONDS", 60)

        # WeChat mini-program.
        self.WECHAT_APPID = _env("WECHAT_APPID", "wxsim0000000000001")
        self.WECHAT_SECRET = _env("WECHAT_SECRET", DEFAULT_WECHAT_SECRET)
        self.WECHAT_API_BASE = _env("WECHAT_API_BASE", "http://127.0.0.1:9101/")
        self.WECHAT_TIMEOUT = _float("WECHAT_TIMEOUT", 5.0)

        # SMS (Tencent Cloud SMS protocol, API version 2021-01-11).
        self.SMS_ENDPOINT = _env("SMS_ENDPOINT", "127.0.0.1:9102")
        self.SMS_SCHEME = _env("SMS_SCHEME", "http")
        self.SMS_REGION = _env("SMS_REGION", "ap-guangzhou")
        self.TENCENT_SECRET_ID = _env("TENCENT_SECRET_ID", "AKIDsimulator0000000000000000000000")
        self.TENCENT_SECRET_KEY = _env("TENCENT_SECRET_KEY", DEFAULT_TENCENT_SECRET_KEY)
        self.SMS_SDK_APP_ID = _env("SMS_SDK_APP_ID", "1400000001")
        self.SMS_SIGN_NAME = _env("SMS_SIGN_NAME", "一网通办")
        self.SMS_TEMPLATE_OTP = _env("SMS_TEMPLATE_OTP", "100001")
        self.SMS_TIMEOUT = _float("SMS_TIMEOUT", 5.0)

        # Real-name verification (docs/identity.md). Which methods each channel offers:
        self.IDENTITY_METHODS_MINIPROGRAM = _env("IDENTITY_METHODS_MINIPROGRAM", "wechat_face,id_check")
        self.IDENTITY_METHODS_APP = _env("IDENTITY_METHODS_APP", "tencent_faceid,alipay_face,id_check")
        self.FACE_CONSENT_VERSION = _env("FACE_CONSENT_VERSION", "face-2026-12")
        self.FACE_PER_ACCOUNT_PER_DAY = _int("FACE_PER_ACCOUNT_PER_DAY", 3)
        self.FACE_PER_IP_PER_HOUR = _int("FACE_PER_IP_PER_HOUR", 10)
        self.IDCHECK_PER_ACCOUNT_PER_DAY = _int("IDCHECK_PER_ACCOUNT_PER_DAY", 5)
        self.IDCHECK_PER_IP_PER_HOUR = _int("IDCHECK_PER_IP_PER_HOUR", 10)
        # Starts (face or ID check) naming one ID number per day, across all accounts and IPs;
        # keyed by the number's blind index. Keep it above one account's own allowance (3 + 5).
        self.VERIFY_PER_ID_NUMBER_PER_DAY = _int("VERIFY_PER_ID_NUMBER_PER_DAY", 10)
        self.PROVIDER_TIMEOUT = _float("PROVIDER_TIMEOUT", 5.0)
        # Tencent Cloud FaceID (慧眼), API 2018-03-01; TENCENT_SECRET_ID/KEY sign the calls.
        self.FACEID_ENDPOINT = _env("FACEID_ENDPOINT", "127.0.0.1:9103")
        self.FACEID_SCHEME = _env("FACEID_SCHEME", "http")
        self.FACEID_REGION = _env("FACEID_REGION", "ap-guangzhou")
        self.FACEID_RULE_ID = _env("FACEID_RULE_ID", "1")
        self.FACEID_REDIRECT_URL = _env("FACEID_REDIRECT_URL", "")
        # Alipay identity verification (alipay.user.certify.open.*), RSA2 both ways.
        self.ALIPAY_GATEWAY = _env("ALIPAY_GATEWAY", "http://127.0.0.1:9104/gateway.do")
        self.ALIPAY_APP_ID = _env("ALIPAY_APP_ID", "2021000000000001")
        self.ALIPAY_APP_PRIVATE_KEY = _env("ALIPAY_APP_PRIVATE_KEY")  # PEM; None → development key
        self.ALIPAY_PUBLIC_KEY = _env("ALIPAY_PUBLIC_KEY")  # Alipay's PEM public key; None → simulator's
        self.ALIPAY_RETURN_URL = _env("ALIPAY_RETURN_URL", "https://yiwang.example.gov.cn/identity/return")
        # Public-security two-element check (name + ID number), HTTP JSON signed with HMAC-SM3.
        self.IDCHECK_BASE_URL = _env("IDCHECK_BASE_URL", "http://127.0.0.1:9105/")
        self.IDCHECK_APP_ID = _env("IDCHECK_APP_ID", "yiwang-sim")
        self.IDCHECK_APP_SECRET = _env("IDCHECK_APP_SECRET", DEFAULT_IDCHECK_APP_SECRET)
        # Government data (docs/shared-data.md): the data-sharing exchange and the e-certificate
        # library, both signed with SM3-HMAC (GOVDATA_SECRET).
        self.EXCHANGE_BASE_URL = _env("EXCHANGE_BASE_URL", "http://127.0.0.1:9110/")
        self.ECERT_BASE_URL = _env("ECERT_BASE_URL", "http://127.0.0.1:9111/")
        self.GOVDATA_APP_ID = _env("GOVDATA_APP_ID", "yiwang-sim")
        self.GOVDATA_SECRET = _env("GOVDATA_SECRET", "sim-govdata-secret-0000000000000")
        self.GOVDATA_TIMEOUT = _float("GOVDATA_TIMEOUT", 5.0)
        self.GOVDATA_SIM_POPULATION = _int("GOVDATA_SIM_POPULATION", 1200)
        self.GOVDATA_SIM_SEED = _int("GOVDATA_SIM_SEED", 20261204)
        self.EXCHANGE_SIM_APPROVAL_SECONDS = _float("EXCHANGE_SIM_APPROVAL_SECONDS", 30.0)
        # How often pending (conditional) shared records are asked about again, and how long the
        # shared data fetched for an application is kept once the application is finished.
        self.SHARED_PENDING_POLL_SECONDS = _int("SHARED_PENDING_POLL_SECONDS", 30)
        self.SHARED_DATA_RETENTION_DAYS = _int("SHARED_DATA_RETENTION_DAYS", 0)
        self.PRESENTATION_TTL_SECONDS = _int("PRESENTATION_TTL_SECONDS", 300)
        # The provincial platform (docs/province.md): the profile and its secrets.
        self.PROVINCE_PROFILE = _env("PROVINCE_PROFILE", "reference")  # name or path of a JSON file
        self.PROVINCE_BASE_URL = _env("PROVINCE_BASE_URL", "http://127.0.0.1:9106/")
        self.PROVINCE_APP_ID = _env("PROVINCE_APP_ID", "yiwang-sim")
        self.PROVINCE_SIGNING = _env("PROVINCE_SIGNING")  # SM3-HMAC or SM2; None → the profile's
        self.PROVINCE_SECRET = _env("PROVINCE_SECRET", DEFAULT_PROVINCE_SECRET)
        self.PROVINCE_SM4_KEY = _env("PROVINCE_SM4_KEY", DEFAULT_PROVINCE_SM4_KEY)
        self.PROVINCE_SM2_USER_ID = _env("PROVINCE_SM2_USER_ID", "1234567812345678")
        self.PROVINCE_SM2_PRIVATE_KEY = _env("PROVINCE_SM2_PRIVATE_KEY", DEFAULT_PROVINCE_SM2_PRIVATE_KEY)
        self.PROVINCE_SM2_PUBLIC_KEY = _env("PROVINCE_SM2_PUBLIC_KEY", DEFAULT_PROVINCE_SM2_PUBLIC_KEY)
        self.PROVINCE_PEER_SM2_PUBLIC_KEY = _env(
            "PROVINCE_PEER_SM2_PUBLIC_KEY", DEFAULT_PROVINCE_PEER_SM2_PUBLIC_KEY
        )
        # Simulator only: the province's own key and where it calls yiwang back.
        self.PROVINCE_SIM_SM2_PRIVATE_KEY = _env(
            "PROVINCE_SIM_SM2_PRIVATE_KEY", DEFAULT_PROVINCE_PEER_SM2_PRIVATE_KEY
        )
        self.PROVINCE_SIM_CALLBACK_URL = _env(
            "PROVINCE_SIM_CALLBACK_URL", "http://127.0.0.1:8000/v1/platform/callbacks"
        )
        self.PROVINCE_SIM_RATE_LIMIT = _float("PROVINCE_SIM_RATE_LIMIT", 200.0)  # requests/s, then 429
        self.PROVINCE_SIM_SCHEDULE = _env("PROVINCE_SIM_SCHEDULE", "accepted:20,completed:60")
        # Delivery (overrides of the profile's values when set).
        self.PROVINCE_RATE_LIMIT = _float("PROVINCE_RATE_LIMIT", 0.0)  # 0 → the profile's
        self.PROVINCE_CONCURRENCY = _int("PROVINCE_CONCURRENCY", 0)
        self.PROVINCE_TIMEOUT = _float("PROVINCE_TIMEOUT", 0.0)
        # Sends in flight per process. Each send waits for the province (and, in a busy process,
        # for the GIL): two processes × 10 keep a 200/s province at ~98 % without a 429; × 8
        # delivered 87 % on the same machine, × 12 drew 429s by running at the limit itself.
        self.FORWARDER_THREADS = _int("FORWARDER_THREADS", 10)
        self.FORWARDER_LEASE = _float("FORWARDER_LEASE", 60.0)  # a claimed row returns after this
        self.RECONCILE_INTERVAL = _float("RECONCILE_INTERVAL", 300.0)
        self.RECONCILE_AFTER = _float("RECONCILE_AFTER", 3600.0)  # open cases quiet this long are asked about

        # 好差评: working days a department has to rectify a 差评 (docs/hall-and-feedback.md).
        self.RECTIFY_WORKING_DAYS = _int("RECTIFY_WORKING_DAYS", 5)
        # …and the citizen to confirm or appeal a response; then it is confirmed by default.
        self.RECTIFY_DECIDE_WORKING_DAYS = _int("RECTIFY_DECIDE_WORKING_DAYS", 5)
        # …and how many working days before that period's last day the citizen is reminded (0: not
        # reminded). Default 1, or 0 for a one-day period (no working day before it to remind on).
        self.RECTIFY_REMIND_WORKING_DAYS_BEFORE = _int(
            "RECTIFY_REMIND_WORKING_DAYS_BEFORE", min(1, self.RECTIFY_DECIDE_WORKING_DAYS - 1)
        )
        # Calendar days (Beijing dates) a citizen has to rate a complaint's answer; unrated after
        # the last of them, the complaint is closed without a rating (docs/hall-and-feedback.md).
        self.COMPLAINT_RATE_DAYS = _int("COMPLAINT_RATE_DAYS", 15)
        # …and how many days before the last of them the citizen is reminded, once an answer (0:
        # not reminded). Default 3, fewer for a short period (never on the answer's own day).
        self.COMPLAINT_RATE_REMIND_DAYS_BEFORE = _int(
            "COMPLAINT_RATE_REMIND_DAYS_BEFORE", max(0, min(3, self.COMPLAINT_RATE_DAYS - 1))
        )
        # Notifications (docs/notifications.md).
        self.NOTIFY_TIMEZONE = _env("NOTIFY_TIMEZONE", "Asia/Shanghai")
        self.NOTIFY_QUIET_HOURS = _env("NOTIFY_QUIET_HOURS", "22:00-07:00")  # no push or SMS then
        # Events that may wake a citizen at night (comma-separated event types).
        self.NOTIFY_QUIET_EXEMPT = _env("NOTIFY_QUIET_EXEMPT", "")
        # Events whose SMS goes out when no other channel delivered within the wait.
        self.NOTIFY_SMS_FALLBACK_EVENTS = _env(
            "NOTIFY_SMS_FALLBACK_EVENTS", "supplement_requested,case_refused,case_completed"
        )
        self.NOTIFY_SMS_FALLBACK_SECONDS = _float("NOTIFY_SMS_FALLBACK_SECONDS", 600.0)
        self.NOTIFY_USER_PER_HOUR = _int("NOTIFY_USER_PER_HOUR", 20)  # push/WeChat/SMS messages
        self.NOTIFY_MAX_ATTEMPTS = _int("NOTIFY_MAX_ATTEMPTS", 6)
        self.NOTIFY_BACKOFF_BASE = _float("NOTIFY_BACKOFF_BASE", 2.0)
        self.NOTIFY_BACKOFF_CAP = _float("NOTIFY_BACKOFF_CAP", 900.0)
        self.NOTIFY_MAX_AGE = _float("NOTIFY_MAX_AGE", 86400.0)  # then technical failure
        self.NOTIFY_LEASE = _float("NOTIFY_LEASE", 60.0)
        self.NOTIFY_THREADS = _int("NOTIFY_THREADS", 8)
        self.NOTIFY_BATCH = _int("NOTIFY_BATCH", 10)  # messages a sending thread takes at once
        self.NOTIFY_SSE_HEARTBEAT = _float("NOTIFY_SSE_HEARTBEAT", 15.0)
        # Streams one gunicorn worker holds at once (each holds one of its threads).
        self.NOTIFY_SSE_PER_WORKER = _int("NOTIFY_SSE_PER_WORKER", max(1, _int("GUNICORN_THREADS", 4) - 1))
        self.NOTIFY_SSE_MAX_SECONDS = _float("NOTIFY_SSE_MAX_SECONDS", 300.0)  # the client reconnects
        # WeChat subscribe templates: event type → template id (one-time unless listed long-term).
        self.NOTIFY_WECHAT_TEMPLATE = _env("NOTIFY_WECHAT_TEMPLATE", "tpl_application_progress")
        self.NOTIFY_WECHAT_LONG_TERM = _env("NOTIFY_WECHAT_LONG_TERM", "")
        self.NOTIFY_WECHAT_PAGE = _env("NOTIFY_WECHAT_PAGE", "pages/applications/detail")
        self.NOTIFY_WECHAT_STATE = _env("NOTIFY_WECHAT_STATE", "formal")
        self.SMS_TEMPLATE_NOTICE = _env("SMS_TEMPLATE_NOTICE", "100002")
        self.SMS_TEMPLATE_ACCOUNT_CLOSED = _env(
            "SMS_TEMPLATE_ACCOUNT_CLOSED", "100003"
        )  # 1 variable: the day
        # Delivery reports: Tencent POSTs them to /v1/platform/sms-receipts/<token> (no signature
        # in its protocol: the secret path and the provider's IP allow-list protect it).
        self.SMS_RECEIPT_TOKEN = _env("SMS_RECEIPT_TOKEN", DEFAULT_SMS_RECEIPT_TOKEN)
        self.SMS_SIM_RECEIPT_URL = _env("SMS_SIM_RECEIPT_URL", "")  # simulator only
        self.SMS_SIM_RECEIPTS = _env("SMS_SIM_RECEIPTS", "")  # simulator only: off, after, before
        # APNs (HTTP/2, ES256 provider token); the simulator speaks HTTP/2 without TLS.
        self.APNS_BASE_URL = _env("APNS_BASE_URL", "http://127.0.0.1:9107")
        self.APNS_TEAM_ID = _env("APNS_TEAM_ID", "YIWANGTEAM")
        self.APNS_KEY_ID = _env("APNS_KEY_ID", "SIMKEY0001")
        self.APNS_PRIVATE_KEY = _env("APNS_PRIVATE_KEY")  # PEM (.p8); None → development key
        self.APNS_TOPIC = _env("APNS_TOPIC", "cn.gov.yiwang.app")
        self.APNS_SIM_PUBLIC_KEY = _env("APNS_SIM_PUBLIC_KEY")  # simulator only; None → development key
        self.APNS_TOKEN_REFRESH = _float("APNS_TOKEN_REFRESH", 40 * 60.0)  # 20-60 minutes
        self.PUSH_TIMEOUT = _float("PUSH_TIMEOUT", 5.0)
        # JPush v3 (Basic appKey:masterSecret) and Huawei Push Kit (OAuth client credentials).
        self.JPUSH_BASE_URL = _env("JPUSH_BASE_URL", "http://127.0.0.1:9108")
        self.JPUSH_APP_KEY = _env("JPUSH_APP_KEY", "simjpushappkey0000000001")
        self.JPUSH_MASTER_SECRET = _env("JPUSH_MASTER_SECRET", DEFAULT_JPUSH_MASTER_SECRET)
        self.HUAWEI_TOKEN_URL = _env("HUAWEI_TOKEN_URL", "http://127.0.0.1:9109/oauth2/v3/token")
        self.HUAWEI_PUSH_BASE_URL = _env("HUAWEI_PUSH_BASE_URL", "http://127.0.0.1:9109")
        self.HUAWEI_APP_ID = _env("HUAWEI_APP_ID", "100000001")
        self.HUAWEI_APP_SECRET = _env("HUAWEI_APP_SECRET", DEFAULT_HUAWEI_APP_SECRET)

        # One-time codes and their limits.
        self.OTP_TTL = _int("OTP_TTL", 300)
        self.OTP_MAX_ATTEMPTS = _int("OTP_MAX_ATTEMPTS", 5)
        self.SMS_PER_PHONE_MIN_INTERVAL = _int("SMS_PER_PHONE_MIN_INTERVAL", 60)
        self.SMS_PER_PHONE_PER_HOUR = _int("SMS_PER_PHONE_PER_HOUR", 3)  # per phone and address
        # Every address together, as the provider counts per number (Tencent's default: 5 an
        # hour, 10 a day): a code it would refuse is a 429 now, not a message never sent.
        self.SMS_PER_PHONE_TOTAL_PER_HOUR = _int("SMS_PER_PHONE_TOTAL_PER_HOUR", 5)
        self.SMS_PER_PHONE_TOTAL_PER_DAY = _int("SMS_PER_PHONE_TOTAL_PER_DAY", 10)
        self.SMS_PER_IP_PER_HOUR = _int("SMS_PER_IP_PER_HOUR", 20)
        self.LOGIN_PER_IP_PER_MINUTE = _int("LOGIN_PER_IP_PER_MINUTE", 30)

        # Operators.
        self.ADMIN_IDLE_TIMEOUT = _int("ADMIN_IDLE_TIMEOUT", 900)
        self.ADMIN_LOCKOUT_THRESHOLD = _int("ADMIN_LOCKOUT_THRESHOLD", 5)
        self.ADMIN_LOCKOUT_SECONDS = _int("ADMIN_LOCKOUT_SECONDS", 900)
        self.ADMIN_TOKEN_TTL = _int("ADMIN_TOKEN_TTL", 8 * 3600)
        # Seconds a new TOTP secret asked for at POST /admin/v1/me/totp waits for the password change.
        self.ADMIN_TOTP_PENDING_TTL = _int("ADMIN_TOTP_PENDING_TTL", 600)

        # Background jobs (outbox).
        self.OUTBOX_QUEUE = _env("OUTBOX_QUEUE", "yiwang")
        self.OUTBOX_MAX_ATTEMPTS = _int("OUTBOX_MAX_ATTEMPTS", 8)
        self.OUTBOX_BACKOFF_BASE = _float("OUTBOX_BACKOFF_BASE", 2.0)
        self.OUTBOX_BACKOFF_CAP = _float("OUTBOX_BACKOFF_CAP", 600.0)
        self.OUTBOX_RUN_TIMEOUT = _int("OUTBOX_RUN_TIMEOUT", 120)
        self.OUTBOX_ENQUEUE_TIMEOUT = _int("OUTBOX_ENQUEUE_TIMEOUT", 60)
        self.OUTBOX_SWEEP_INTERVAL = _float("OUTBOX_SWEEP_INTERVAL", 5.0)
        self.OUTBOX_ENQUEUE_ON_COMMIT = _env("OUTBOX_ENQUEUE_ON_COMMIT", "1") == "1"
        # Days a dead job keeps the personal data its payload names (`_scrub`: an SMS job's phone
        # and code) for an operator's replay; then the sweeper erases it and a replay is refused.
        self.OUTBOX_DEAD_SCRUB_DAYS = _int("OUTBOX_DEAD_SCRUB_DAYS", 7)

        # Data-use ledger lines of third-party access go through a local spool (core/spool.py):
        # appended to a file on this host, inserted in batches every interval (0 = inserted before
        # the answer). Past MAX_PENDING rows not yet in the database, third-party access pauses.
        self.LEDGER_SPOOL_DIR = _env("LEDGER_SPOOL_DIR", str(self.INSTANCE_DIR / "spool" / "ledger"))
        self.LEDGER_SPOOL_INTERVAL = _float("LEDGER_SPOOL_INTERVAL", 0.2)
        self.LEDGER_SPOOL_MAX_PENDING = _int("LEDGER_SPOOL_MAX_PENDING", 100_000)

        # HTTP.
        self.MAX_JSON_BYTES = _int("MAX_JSON_BYTES", 1024 * 1024)
        # Applications: uploads of materials, drafts, case numbers (docs/applications.md).
        self.MATERIAL_MAX_BYTES = _int("MATERIAL_MAX_BYTES", 10 * 1024 * 1024)
        self.MATERIAL_MAX_FILES = _int("MATERIAL_MAX_FILES", 20)  # per material of one application
        self.MATERIAL_ORPHAN_GRACE_SECONDS = _int("MATERIAL_ORPHAN_GRACE_SECONDS", 3600)
        self.APPLICATION_DRAFT_TTL_DAYS = _int("APPLICATION_DRAFT_TTL_DAYS", 30)
        # How often the sweeper purges expired drafts and removes orphaned uploads.
        self.HOUSEKEEPING_INTERVAL = _float("HOUSEKEEPING_INTERVAL", 600.0)
        self.CASE_NUMBER_FORMAT = _env("CASE_NUMBER_FORMAT", "{code}{date:%Y%m%d}{serial:04d}")
        # Serials each process reserves at a time on PostgreSQL (domain/applications/case_numbers.py).
        self.CASE_NUMBER_BLOCK = _int("CASE_NUMBER_BLOCK", 10)
        self.STORAGE_BACKEND = _env("STORAGE_BACKEND", "local")
        self.STORAGE_LOCAL_ROOT = _env("STORAGE_LOCAL_ROOT", str(self.INSTANCE_DIR / "blobs"))
        self.STORAGE_S3_BUCKET = _env("STORAGE_S3_BUCKET", "")
        self.STORAGE_S3_ENDPOINT = _env("STORAGE_S3_ENDPOINT", "")
        self.STORAGE_S3_ACCESS_KEY = _env("STORAGE_S3_ACCESS_KEY", "")
        self.STORAGE_S3_SECRET_KEY = _env("STORAGE_S3_SECRET_KEY", "")
        self.STORAGE_S3_REGION = _env("STORAGE_S3_REGION", "")
        self.STORAGE_S3_PREFIX = _env("STORAGE_S3_PREFIX", "")
        # Multipart framing around the largest material still fits.
        self.MAX_CONTENT_LENGTH = _int("MAX_UPLOAD_BYTES", self.MATERIAL_MAX_BYTES + 256 * 1024)
        self.IDEMPOTENCY_TTL = _int("IDEMPOTENCY_TTL", 86400)
        # Endpoints allowed a larger JSON body than MAX_JSON_BYTES (catalog imports; a bigger catalog
        # goes in several documents, or through `flask catalog import`). Below MAX_CONTENT_LENGTH.
        # Endpoints whose body is not JSON (CSV uploads); they check their own content.
        self.NON_JSON_ENDPOINTS = {"admin_catalog.ReferenceCsv", "applications.MaterialFiles"}
        self.BODY_LIMITS = {"admin_catalog.Import": _int("CATALOG_IMPORT_MAX_BYTES", 8 * 1024 * 1024)}

        # Service catalog read model: how often each process checks for a new catalog revision,
        # and how many rendered item details it keeps.
        self.CATALOG_REFRESH_SECONDS = _float("CATALOG_REFRESH_SECONDS", 2.0)
        self.CATALOG_DETAIL_CACHE = _int("CATALOG_DETAIL_CACHE", 500)
        self.CATALOG_MAX_AGE = _int("CATALOG_MAX_AGE", 60)

        # flask-smorest / OpenAPI.
        self.API_TITLE = "yiwang 一网通办移动端服务"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = _env(
            "OPENAPI_SWAGGER_UI_URL", "/docs/assets/"
        )  # bundled assets (api/docs_assets.py); no CDN needed
        self.COMPRESS_MIMETYPES = ["application/json"]
        self.COMPRESS_MIN_SIZE = 500
        self.COMPRESS_ALGORITHM = ["gzip", "br", "deflate"]
        self.JSON_AS_ASCII = False

    def validate(self) -> None:
        """Raise ConfigError when the configuration must not be used."""
        if not self.DATA_KEYS or self.DATA_KEY_ACTIVE not in {
            part.split(":")[0] for part in self.DATA_KEYS.split(",")
        }:
            raise ConfigError("DATA_KEY_ACTIVE must name one of the kids in DATA_KEYS")
        if self.IDEMPOTENCY_TTL < 86400:
            # A phone that lost the answer to a submission may retry the next morning: the key
            # must still replay the first answer then, not submit again.
            raise ConfigError("IDEMPOTENCY_TTL must keep keys at least 24 h (86400 s)")
        for name in ("RECTIFY_WORKING_DAYS", "RECTIFY_DECIDE_WORKING_DAYS"):
            # Counted on the calendar: fewer than one working day would refuse every 差评 (422).
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a whole number of working days, at least 1")
        if not 1 <= self.COMPLAINT_RATE_DAYS <= 90:
            # 0 would close an answer before the citizen could read it; months would keep it open
            # past any use of the rating.
            raise ConfigError("COMPLAINT_RATE_DAYS must be a whole number of days from 1 to 90")
        # As the rectification reminder: on (or before) the answer's own day it tells nothing the
        # answer's notice did not.
        if not 0 <= self.COMPLAINT_RATE_REMIND_DAYS_BEFORE < self.COMPLAINT_RATE_DAYS:
            raise ConfigError(
                "COMPLAINT_RATE_REMIND_DAYS_BEFORE must be a whole number of days from 0 (no reminder)"
                " to one less than COMPLAINT_RATE_DAYS"
            )
        if not 1 <= self.OUTBOX_DEAD_SCRUB_DAYS <= 30:
            # 0 would erase what a replay needs before an operator could even see the dead job;
            # more than a month keeps a phone number and code past any replay's purpose.
            raise ConfigError("OUTBOX_DEAD_SCRUB_DAYS must be a whole number of days from 1 to 30")
        # A reminder on (or before) the response's own day tells nothing its notice did not.
        if not 0 <= self.RECTIFY_REMIND_WORKING_DAYS_BEFORE < self.RECTIFY_DECIDE_WORKING_DAYS:
            raise ConfigError(
                "RECTIFY_REMIND_WORKING_DAYS_BEFORE must be a whole number of working days from 0 (no"
                " reminder) to one less than RECTIFY_DECIDE_WORKING_DAYS"
            )


class DevelopmentConfig(BaseConfig):
    """Embedded defaults: SQLite file, embedded Redis, local simulators."""

    ENV_NAME = "development"


class TestConfig(BaseConfig):
    """Used by the test suite; tests may override any attribute."""

    ENV_NAME = "test"

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        self.DATABASE_URL = _env("DATABASE_URL") or f"sqlite:///{self.INSTANCE_DIR / 'test.db'}"
        self.OUTBOX_ENQUEUE_ON_COMMIT = True
        self.CATALOG_REFRESH_SECONDS = 0.0  # every request sees the newest revision
        self.LEDGER_SPOOL_INTERVAL = _float("LEDGER_SPOOL_INTERVAL", 0.0)  # a line is readable at once
        self.LOG_LEVEL = _env("LOG_LEVEL", "WARNING")


PROVIDER_ASSIGNED_SMS_IDS = (
    "SMS_SDK_APP_ID",
    "SMS_SIGN_NAME",
    "SMS_TEMPLATE_OTP",
    "SMS_TEMPLATE_NOTICE",
    "SMS_TEMPLATE_ACCOUNT_CLOSED",
)


class ProductionConfig(BaseConfig):
    """Production: real servers and real secrets are mandatory."""

    ENV_NAME = "production"

    def validate(self) -> None:
        super().validate()
        problems = []
        if self.SECRET_KEY == DEFAULT_SECRET_KEY or len(self.SECRET_KEY or "") < 32:
            problems.append("SECRET_KEY is the development default or shorter than 32 characters")
        if self.DATA_KEYS == DEFAULT_DATA_KEYS or DEFAULT_DATA_KEYS in self.DATA_KEYS:
            problems.append("DATA_KEYS still contains the development key")
        if self.LOOKUP_HASH_KEY == DEFAULT_LOOKUP_HASH_KEY or len(self.LOOKUP_HASH_KEY) < 32:
            problems.append("LOOKUP_HASH_KEY is the development default or too short")
        if self.WECHAT_SECRET == DEFAULT_WECHAT_SECRET:
            problems.append("WECHAT_SECRET is the simulator default")
        if self.TENCENT_SECRET_KEY == DEFAULT_TENCENT_SECRET_KEY:
            problems.append("TENCENT_SECRET_KEY is the simulator default")
        if self.IDCHECK_APP_SECRET == DEFAULT_IDCHECK_APP_SECRET:
            problems.append("IDCHECK_APP_SECRET is the simulator default")
        province_defaults = (DEFAULT_PROVINCE_SECRET, DEFAULT_PROVINCE_SM4_KEY)
        if self.PROVINCE_SECRET in province_defaults or self.PROVINCE_SM4_KEY in province_defaults:
            problems.append("PROVINCE_SECRET and PROVINCE_SM4_KEY must not be the simulator defaults")
        if self.PROVINCE_SM2_PRIVATE_KEY == DEFAULT_PROVINCE_SM2_PRIVATE_KEY:
            problems.append("PROVINCE_SM2_PRIVATE_KEY is the development key")
        if not self.ALIPAY_APP_PRIVATE_KEY or not self.ALIPAY_PUBLIC_KEY:
            problems.append("ALIPAY_APP_PRIVATE_KEY and ALIPAY_PUBLIC_KEY must be set (no development keys)")
        if self.SMS_RECEIPT_TOKEN == DEFAULT_SMS_RECEIPT_TOKEN or len(self.SMS_RECEIPT_TOKEN or "") < 24:
            problems.append("SMS_RECEIPT_TOKEN is the simulator default or shorter than 24 characters")
        # Approved per account by the provider: the simulator's ids would fail every login code
        # and notice at the provider, so each must be named, not defaulted.
        unset = [name for name in PROVIDER_ASSIGNED_SMS_IDS if not (_env(name) or "").strip()]
        if unset:
            problems.append(
                ", ".join(unset) + " must be set explicitly (approved for this account by the SMS provider)"
            )
        if self.JPUSH_MASTER_SECRET == DEFAULT_JPUSH_MASTER_SECRET:
            problems.append("JPUSH_MASTER_SECRET is the simulator default")
        if self.HUAWEI_APP_SECRET == DEFAULT_HUAWEI_APP_SECRET:
            problems.append("HUAWEI_APP_SECRET is the simulator default")
        if not self.APNS_PRIVATE_KEY:
            problems.append("APNS_PRIVATE_KEY must be set (no development key)")
        if not _env("DATABASE_URL"):
            problems.append("DATABASE_URL must be set (no embedded SQLite in production)")
        if self.JWT_AUDIENCE == self.JWT_ADMIN_AUDIENCE:
            problems.append("JWT_AUDIENCE and JWT_ADMIN_AUDIENCE must differ")
        if not self.REDIS_URL:
            problems.append("REDIS_URL must be set (no embedded Redis in production)")
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))


_CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> BaseConfig:
    """Build the config named by `name` or YIWANG_ENV (default development) and validate it."""
    name = name or _env("YIWANG_ENV", "development")
    try:
        cls = _CONFIGS[name]
    except KeyError as exc:
        raise ConfigError(f"unknown YIWANG_ENV {name!r}; use one of {sorted(_CONFIGS)}") from exc
    config = cls()
    config.validate()
    return config
