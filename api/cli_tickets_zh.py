"""Simplified Chinese: every word `bidao tickets` and `bidao ticket N` print (shown first)."""

STATUS = {
    "open": "待接单",
    "accepted": "已接单",
    "on_site": "已到达",
    "resolved": "已解决",
    "rated": "已评价",
    "cancelled": "已撤销",
}
ROLE = {
    "village_secretary": "村书记",
    "deputy_secretary": "副书记",
    "grid_worker": "网格员",
    "neighbour_chief": "邻长",
    "group_leader": "组长",
    "area_chief": "片长",
    "township_duty": "镇值班",
    "family": "家属",
    "installer": "安装维护员",
}
CATEGORY = {"urgent": "紧急", "ordinary": "一般", "hard": "较难", "complex": "复杂"}
RATING = {"up": "满意（点赞）", "down": "不满意（点踩）"}
ACTION_CHANNEL = {
    "box_key": "呼叫器按键",
    "voice_keypress": "电话按键",
    "dashboard": "管理页面",
    "api": "接口",
    "cli": "命令行",
    "link": "短信链接页面",
    "system": "系统",
}
MESSAGE_CHANNEL = {"sms": "短信", "voice": "电话"}
TEMPLATE = {
    "ticket_call": "呼叫上门",
    "ticket_call_repeat": "再次呼叫",
    "ticket_still_waiting": "仍无人接单，仍可接单",
    "ticket_informed": "告知有人呼叫",
    "ticket_escalated": "转由其处理",
    "ticket_escalated_no_answer": "前一位未接电话，转由其处理",
    "ticket_escalated_not_accepted": "无人接单，转由其处理",
    "ticket_escalated_declined": "前一位无法前往，转由其处理",
    "ticket_escalated_unreachable": "前一位无法联系，转由其处理",
    "ticket_not_arrived": "接单人未到达，可由其接手",
    "ticket_taken": "已有人接单",
    "ticket_accepted": "已接单，如何报告进度",
    "ticket_accepted_link": "已接单，报告进度的链接",
    "ticket_pressed_again_accepted": "接单后居民再次呼叫",
    "ticket_pressed_again_on_site": "到达后居民再次呼叫",
    "ticket_reassigned_to_you": "工单转交给其",
    "ticket_reassigned_sms": "工单转交给其，如何报告进度",
    "ticket_reassigned_sms_link": "工单转交给其，报告进度的链接",
    "ticket_taken_over": "已接手，如何报告进度",
    "ticket_taken_over_link": "已接手，报告进度的链接",
    "ticket_reassigned_away": "工单已转交他人",
    "ticket_cancelled_by_resident": "居民取消呼叫，请回电",
    "ticket_cancelled_no_phone": "居民取消呼叫，请上门确认",
    "ticket_overdue": "超过办理时限，请督办",
    "ticket_review": "居民不满意，请回访",
    "ticket_access": "钥匙盒密码和健康提示",
    "family_called": "告知家属：老人呼叫",
    "family_accepted": "告知家属：已有人接单",
    "family_arrived": "告知家属：已到达",
    "family_resolved": "告知家属：已办结",
    "digest": "多条提醒合并发送",
    "device_unassigned_call": "呼叫器未绑定住户，请核实",
    "device_unknown_household_call": "呼叫器登记的住户不存在，请核实",
    "device_call_failed": "未能生成工单，请联系老人",
    "device_offline": "呼叫器没有信号",
    "device_back_online": "呼叫器恢复信号",
    "no_water_alarm": "用水预警：长时间没有用水",
    "no_water_alarm_morning": "用水预警：过了平时用水的时间还没有用水",
    "leak_alarm": "用水预警：连续走水",
    "no_water_alarm_escalated": "没有用水的预警无人接手，转由其查看",
    "leak_alarm_escalated": "连续走水的预警无人接手，转由其查看",
    "no_water_all_clear": "又用上水了，预警解除",
    "no_water_all_clear_key": "老人按了呼叫盒，预警解除",
    "no_water_all_clear_answer": "老人接电话报了平安，预警解除",
    "water_ask_resident": "打电话问老人是否平安",
    "water_ask_resident_morning": "早上没有用水，打电话问老人是否平安",
    "no_water_all_clear_away": "已登记外出，预警解除",
    "leak_all_clear": "停止走水，预警解除",
    "alarm_accepted": "已接手预警，如何报告结果",
    "alarm_accepted_link": "已接手预警，报告结果的链接",
    "alarm_reassigned_sms": "预警转交给其，如何报告结果",
    "alarm_reassigned_sms_link": "预警转交给其，报告结果的链接",
    "alarm_taken_over": "已接手预警，如何报告结果",
    "alarm_taken_over_link": "已接手预警，报告结果的链接",
    "alarm_not_arrived": "接手人未到达，可由其接手",
    "alarm_family_accepted": "告知家属：已有人接手预警",
    "alarm_family_resolved": "告知家属：预警已处理",
    "water_away_reminder": "外出应归仍未用水，请确认",
    "water_watch_blind": "水表没有信号，用水看护失效",
    "water_watch_restored": "水表恢复信号，用水看护恢复",
    "water_first_use_today": "今日第一次用水（家属自选的早安短信）",
    "health_box_offline": "告知安装维护员：呼叫盒没有信号",
    "health_box_offline_ok": "告知安装维护员：呼叫盒恢复信号",
    "health_meter_offline": "告知安装维护员：水表没有数据",
    "health_meter_offline_ok": "告知安装维护员：水表恢复数据",
    "health_family_offline": "告知家属：呼叫盒没有信号",
    "health_family_offline_ok": "告知家属：呼叫盒恢复信号",
    "health_box_low_battery": "告知安装维护员：呼叫盒电量低",
    "health_box_low_battery_ok": "告知安装维护员：呼叫盒电量恢复",
    "health_meter_low_battery": "告知安装维护员：水表电量低",
    "health_meter_low_battery_ok": "告知安装维护员：水表电量恢复",
    "health_family_low_battery": "告知家属：呼叫盒电量低",
    "health_family_low_battery_ok": "告知家属：呼叫盒电量恢复",
    "health_box_tamper": "告知安装维护员：呼叫盒外壳被打开或移动",
    "health_box_tamper_ok": "告知安装维护员：呼叫盒外壳报警解除",
    "health_meter_tamper": "告知安装维护员：水表被拆动",
    "health_meter_tamper_ok": "告知安装维护员：水表拆动报警解除",
    "health_family_tamper": "告知家属：呼叫盒外壳被打开或移动",
    "health_family_tamper_ok": "告知家属：呼叫盒外壳报警解除",
    "health_box_power_loss": "告知安装维护员：呼叫盒断电",
    "health_box_power_loss_ok": "告知安装维护员：呼叫盒恢复供电",
    "health_meter_power_loss": "告知安装维护员：水表断电",
    "health_meter_power_loss_ok": "告知安装维护员：水表恢复供电",
    "health_family_power_loss": "告知家属：呼叫盒断电",
    "health_family_power_loss_ok": "告知家属：呼叫盒恢复供电",
}
DELIVERY = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发出",
    "delivered": "已送达",
    "answered": "已接通",
    "failed": "发送失败",
    "no-answer": "无人接听",
    "busy": "占线",
    "canceled": "已取消",
    "merged": "合并到第{into}条一起发送",
    "quarantined": "多次失败，已放弃",
}
KEYPRESS = {"1": "按1接单", "2": "按2转给下一位", "9": "按9重听"}
KEYPRESS_OTHER = "按了{digit}"
KEYPRESS_BY_MENU = {
    "voice_menu_alarm": {"1": "按1我去查看", "2": "按2转给他人", "9": "按9重听"},
    "voice_menu_take_over": {"1": "按1接手", "9": "按9重听"},
    "voice_menu_owner": {"1": "按1收到", "9": "按9重听"},
}
"""What a key meant on calls whose menu is not a call's (alerts/templates.py VOICE_MENUS)."""
FOLLOW_UP = {"fallback": "短信未送达，改打电话", "retry": "未接听，重拨"}
EVENT = {
    "opened": "按下呼叫键",
    "pressed_again": "再次按下呼叫键",
    "owner_alerted": "再次通知负责人",
    "no_household": "呼叫器没有登记住户",
    "accepted": "接单",
    "accept_too_late": "接单时已有人接单",
    "declined": "无法前往，转给下一位",
    "on_site": "到达",
    "resolved": "已解决",
    "classified": "分类",
    "note": "备注",
    "reassigned": "转交",
    "no_answer": "未接听",
    "escalated": "升级",
    "escalation_exhausted": "已无人可升级",
    "overdue": "超过办理时限",
    "red_key": "按下红键",
    "cancelled": "居民按红键撤销呼叫",
    "bridged": "接通老人电话",
    "bridge_ended": "与老人的通话结束",
    "rated_up": "评价：满意",
    "rated_down": "评价：不满意",
    "rating": "评价",
    "alarm_raised": "用水预警",
    "all_clear": "预警解除",
    "labelled": "标注结果",
}
PRESSES = "共{count}次"
VIA = "经{channel}"
CALL_ENDED = "挂断通话"
HANDED = "由{old}转交给{new}"
WHY = {
    "not_accepted": "{minutes}分钟内无人接单",
    "no answer": "无人接听",
    "declined": "前一位无法前往",
    "nobody to call": "无人可呼叫",
    "not accepted": "无人接单",
    "not arrived": "未按时到达",
}
TOLD = "已通知{role}"
LABEL = {
    "ticket": "工单",
    "resident": "居民",
    "address": "地址",
    "place": "位置",
    "household": "户号",
    "box": "呼叫器",
    "owner": "负责人",
    "category": "类别",
    "rating": "评价",
    "opened": "呼叫时间",
    "age": "时长",
    "status": "状态",
    "none": "无",
    "unknown": "未登记",
    "by": "经",
}
COUNT = "共{n}个工单"
AGE = {"minutes": "{n}分钟", "hours": "{n}小时", "days": "{n}天"}
ERROR = {
    "no_ticket": "没有第{ticket}号工单",
    "no_village": "没有代码或名称为“{text}”的村",
    "many_villages": "有多个村叫“{text}”，请用代码：",
    "no_contact": "没有编号、电话或姓名为“{text}”的联系人",
    "many_contacts": "有多个联系人符合“{text}”，请用编号：",
    "days": "天数必须是正数，而不是 {days}",
    "refused": "无法执行",
    "state": "第{ticket}号工单现在是“{status}”，不能{action}",
    "accept_by": "请用 --by 说明是谁接的单（编号、电话或姓名）",
    "taken": "第{ticket}号工单已由{owner}接单，没有改动",
}
ACTION = {
    "label": "标注结果",
    "accept": "接单",
    "arrive": "记录到达",
    "resolve": "记录解决",
    "classify": "分类",
    "note": "添加备注",
    "reassign": "转交",
}
DONE = {
    "label": "第{ticket}号工单：{who}标注为“{outcome}”",
    "label_nobody": "第{ticket}号工单：已标注为“{outcome}”",
    "resolve_outcome": "第{ticket}号工单：已由{who}解决，标注为“{outcome}”",
    "accept": "第{ticket}号工单：{who}已接单",
    "arrive": "第{ticket}号工单：{who}已到达",
    "resolve": "第{ticket}号工单：已由{who}解决",
    "classify": "第{ticket}号工单：类别为{category}",
    "note": "第{ticket}号工单：已添加备注",
    "reassign": "第{ticket}号工单：已转交{who}",
}

# -- alarms of the water watch: what they are and what they turned out to be --------------

KIND = {"call": "呼叫", "no_water": "无用水报警", "leak": "持续用水报警"}
"""What a ticket is: the resident's call, or an alarm of the water watch."""
OUTCOME = {
    "real": "真实情况",
    "late_rising": "误报：晚起",
    "away": "误报：外出",
    "hospital": "误报：住院",
    "meter_fault": "误报：水表故障",
    "other": "误报：其他",
}
"""What an alarm turned out to be, as the one who resolved it says it."""
OUTCOME_SHORT = {
    "real": "真实",
    "late_rising": "晚起",
    "away": "外出",
    "hospital": "住院",
    "meter_fault": "水表故障",
    "other": "其他",
}
"""The same, as typed in short after `label` or `--outcome`."""
ALL_CLEAR = {
    "water": "又用上水了",
    "key": "按了呼叫盒",
    "away": "已登记外出",
    "flow_stopped": "停止走水",
}
"""How an alarm was cleared (the all-clear's detail; a leak's is the water stopping)."""
ALARM_LABEL = {"opened": "报警时间", "outcome": "结果", "unlabelled": "未标注", "kind": "类型"}
ALARM_ERROR = {
    "unknown_outcome": "不认识的结果“{text}”，可选：{choices}",
    "not_alarm": "第{ticket}号工单是呼叫，不是报警，不用标注真实或误报",
    "outcome_for_kind": "第{ticket}号工单是{kind}，不能标为“{outcome}”，可选：{choices}",
}
