"""An operator who opens a notice's built-in template and saves it unchanged is never refused:
every placeholder a default uses is one the editor accepts, and the sample it is checked with
fills every one of them as a real notice would (a complaint's kind and its rating day too)."""

from __future__ import annotations

import pytest

from notifications import templates, wechat_data
from notifications.events import EVENTS

CASES = [
    (event_type, channel, lang, layout)
    for event_type in sorted(EVENTS)
    for channel in templates.CHANNELS
    for lang in templates.channel_langs(channel)
    for layout in (sorted(wechat_data.LAYOUTS) if channel == "wechat" else [None])
]


@pytest.mark.parametrize(("event_type", "channel", "lang", "layout"), CASES)
def test_a_default_template_saved_back_unchanged_is_accepted(event_type, channel, lang, layout):
    content = templates.defaults(
        event_type,
        channel,
        lang,
        wechat_template=layout or "tpl_application_progress",
        sms_template="1234567",
    )
    templates.validate(event_type, channel, lang, content)  # BadTemplate (422) if refused
