"""Scenario report words in Simplified Chinese: what each step expects, and the report's frame."""

from __future__ import annotations

WORDS: dict[str, str] = {
    "title": "场景 {name}",
    "passed": "通过：{ok}/{total} 步",
    "failed": "未通过：{ok}/{total} 步，第 {first} 步起出错",
    "not_reached": "未执行（前一步失败）",
    "expected": "预期",
    "seen": "实际",
    "gateway_up": "网关启动，设备在线",
    "green_acked": "老人按绿键，呼叫盒收到网关确认",
    "secretary_accepts": "书记的电话响起，他按1接单",
    "deputy_accepts": "书记未接，电话转给副书记，副书记按1接单",
    "on_the_way": "呼叫盒告诉老人：有人正在赶来",
    "link_sent": "接单人收到带报告链接的短信",
    "arrived": "接单人到场，长按绿键，呼叫盒确认已到达",
    "resolved": "接单人通过链接报告已解决，呼叫盒请老人评价",
    "rated": "老人按赞，工单显示已评价",
    "accepted_by_deputy": "工单记录由副书记接单",
    "red_acked": "老人在一分钟内按红键取消",
    "cancelled": "呼叫盒告诉老人：呼叫已取消",
    "ticket_cancelled": "工单显示已撤销",
    "good_frame": "正常帧被网关确认",
    "forged_rejected": "伪造（密钥错误）的帧被拒绝且未确认",
    "replay_rejected": "重放的旧帧被识别为重复，不产生新事件",
    "still_serving": "之后的正常帧仍被确认",
    "before_reboot": "重启前心跳被确认",
    "resynced": "重启丢失计数器后，网关要求重新同步，盒子换新会话",
    "back_in_service": "重启后按绿键仍被网关确认",
    "call_registered": "呼叫盒告诉老人：呼叫已登记",
}
WORDS.update(
    {
        "meter_reading": "水表的读数和心跳被确认",
        "are_you_ok": "六个活动小时没有用水，呼叫盒问老人：您还好吗？",
        "water_alarm": "十分钟内无人回应，网格员收到用水预警短信",
        "all_clear": "老人又用上水，网格员收到预警解除短信",
        "meter_offline_seen": "水表停止上报，设备列表显示离线",
        "meter_back": "水表恢复上报，设备列表显示在线",
        "broker_alarm": "消息服务器或串口线路中断，运维告警一条",
        "broker_cleared": "线路恢复，告警解除，盒子按键仍被确认",
        "rotated": "更换密钥：盒子收到新密钥，用新密钥的帧被确认",
        "storm_acked": "许多盒子和水表按设定速率发送，全部被确认",
    }
)
WORDS["gateway_sees_crowd"] = "许多盒子和水表已登记上线"
WORDS["call_after_rotation"] = "换钥后按绿键仍被网关确认"
