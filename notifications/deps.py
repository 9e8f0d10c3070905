"""What notifications need, built on first use: settings, channel clients and a sender."""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis

from core.crypto import Encryptor
from notifications.settings import NotifySettings


class NotificationDeps:
    """Shared by a process: the settings, the live-update Redis, and the channels."""

    def __init__(self, config: dict[str, Any], encryptor: Encryptor, redis: Redis | None, *, wechat: Any,
                 sms: Any) -> None:  # fmt: skip
        self.config = config
        self.encryptor = encryptor
        self.redis = redis
        self.wechat = wechat
        self.sms = sms
        self.settings = NotifySettings.from_config(config)
        self._lock = threading.Lock()
        self._sender: Any = None

    def sender(self) -> Any:
        from notifications.delivery import Sender

        with self._lock:
            if self._sender is None:
                self._sender = Sender(self.settings, self._channels())
            return self._sender

    def _channels(self) -> dict[str, Any]:
        from integrations.apns.client import ApnsClient
        from integrations.huawei.client import HuaweiPushClient
        from integrations.jpush.client import JPushClient
        from notifications.channels import PushChannel, SmsChannel, WechatChannel

        return {
            "wechat": WechatChannel(self.wechat, self.settings),
            "apns": PushChannel("apns", ApnsClient.from_config(self.config), self.settings),
            "jpush": PushChannel("jpush", JPushClient.from_config(self.config), self.settings),
            "huawei": PushChannel("huawei", HuaweiPushClient.from_config(self.config), self.settings),
            "sms": SmsChannel(self.sms, self.encryptor, self.settings),
        }
