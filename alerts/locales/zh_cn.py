"""Simplified Chinese: every text a resident, secretary or family member reads or hears."""

SMS_PREFIX = "【必到】"
"""The signature every SMS starts with (mainland carriers require one)."""
SENTENCE_END = "。"
LIST_SEPARATOR = "；"

TEMPLATES: dict[str, str] = {
    "ticket_call": "【必到】${resident}，${place}，按下了呼叫键，请尽快联系或上门。工单${ticket}。",
    "ticket_call_repeat": (
        "【必到】${resident}，${place}，又按了呼叫键（共${presses}次），仍未有人接单。工单${ticket}。"
    ),
    "ticket_informed": "【必到】${resident}，${place}，已呼叫书记，请知悉。工单${ticket}。",
    "ticket_escalated": (
        "【必到】${resident}，${place}的呼叫${minutes}分钟内无人接单，现转由您处理。工单${ticket}。"
    ),
    "ticket_not_arrived": (
        "【必到】工单${ticket}已由${owner}接单，但${minutes}分钟内未到达${place}，请跟进。"
    ),
    "ticket_taken": "【必到】工单${ticket}已由${owner}接单，您无需前往。",
    "ticket_cancelled_by_resident": (
        "【必到】${resident}，${place}取消了呼叫。请回电确认老人是否平安。工单${ticket}。"
    ),
    "ticket_overdue": "【必到】工单${ticket}（${place}）已超过办理时限，请督办。",
    "ticket_review": "【必到】${resident}对工单${ticket}的处理表示不满意，请回访。",
    "ticket_access": (
        "【必到】工单${ticket}：${resident}家钥匙盒密码${key_safe}；健康提示：${health}。"
        "仅供上门使用，请勿转发。"
    ),
    "digest": "【必到】您有${count}条提醒：${items}",
    "digest_same": "${text}（同一提醒共${count}条）",
    "not_recorded": "未登记",
    "voice_menu": "接单并前往请按1，无法前往、转给下一位请按2，重听请按9。",
    "voice_accepted": "您已接单，请尽快前往。老人会收到正在赶来的提示。",
    "voice_taken": "这个工单已由${owner}接单，您无需前往。",
    "voice_passed_on": "好的，已转给下一位。",
    "voice_no_input": "没有收到按键，再见。",
    "voice_closed": "这个工单已经结束，谢谢。",
    "voice_connecting": "正在为您接通老人的电话，请稍候。",
    "device_unassigned_call": (
        "【必到】呼叫盒${device}按下了呼叫键，但未绑定住户，无法通知责任人。请尽快核实。"
    ),
    "device_unknown_household_call": (
        "【必到】呼叫盒${device}按下了呼叫键，但它登记的住户${household}不存在，"
        "无法通知责任人。请尽快核实。"
    ),
    "device_call_failed": (
        "【必到】${resident}（${place}）的呼叫盒${device}按下了呼叫键，但系统未能生成工单，"
        "责任人可能没有收到通知。请尽快联系老人。"
    ),
    "device_offline": "【必到】${resident}家的呼叫盒已${hours}小时没有信号，请帮忙查看电源和网络。",
    "device_back_online": "【必到】${resident}家的呼叫盒已恢复信号（此前${hours}小时没有信号）。",
}
