"""The work group's posts in Simplified Chinese: names and times, nothing personal."""

TEXT: dict[str, str] = {
    "opened": "【必到】工单${ticket}：${resident}（${place}）${now}按了呼叫键，已通知负责人。",
    "accepted": "【必到】工单${ticket}：${owner}${now}接单，正在赶往。",
    "on_site": "【必到】工单${ticket}：${owner}${now}已到达。",
    "resolved": "【必到】工单${ticket}：${now}已办结（${owner}负责）。",
    "rated_up": "【必到】工单${ticket}：老人${now}按键表示满意。",
    "rated_down": "【必到】工单${ticket}：老人${now}按键表示不满意，请回访。",
    "overdue": "【必到】工单${ticket}：${resident}（${place}）的呼叫至${now}仍未办结，请关注。",
}
