"""Simplified Chinese: every text a resident, secretary or family member reads or hears."""

SMS_PREFIX = "【必到】"
"""The signature every SMS starts with (mainland carriers require one)."""
SENTENCE_END = "。"
LIST_SEPARATOR = "；"

_ARRIVE_BY_BOX = "到达后请在老人的呼叫盒上长按绿键，记录您已到达"

TEMPLATES: dict[str, str] = {
    "ticket_call": (
        "【必到】${resident}（${place}，电话${phone}）按下了呼叫键，请尽快联系或上门。工单${ticket}。"
    ),
    "ticket_call_repeat": (
        "【必到】${resident}（${place}，电话${phone}）又按了呼叫键（共${presses}次，"
        "第一次在${minutes}分钟前），仍未有人接单。工单${ticket}。"
    ),
    "ticket_still_waiting": (
        "【必到】${resident}（${place}，电话${phone}）${minutes}分钟前的呼叫仍无人接单，"
        "已同时转给下一位负责人，您仍可接单前往。工单${ticket}。"
    ),
    "ticket_informed": "【必到】${resident}（${place}）已呼叫书记，请知悉。工单${ticket}。",
    "ticket_escalated_no_answer": (
        "【必到】${resident}（${place}，电话${phone}）${minutes}分钟前按了呼叫键，"
        "前一位负责人未接电话，现转由您处理。工单${ticket}。"
    ),
    "ticket_escalated_not_accepted": (
        "【必到】${resident}（${place}，电话${phone}）${minutes}分钟前按了呼叫键，"
        "至今无人接单，现转由您处理。工单${ticket}。"
    ),
    "ticket_escalated_declined": (
        "【必到】${resident}（${place}，电话${phone}）${minutes}分钟前按了呼叫键，"
        "${previous}表示无法前往，现转由您处理。工单${ticket}。"
    ),
    "ticket_escalated_unreachable": (
        "【必到】${resident}（${place}，电话${phone}）刚按了呼叫键，"
        "前一位负责人此时无法联系，现转由您处理。工单${ticket}。"
    ),
    "ticket_not_arrived": (
        "【必到】${resident}（${place}，电话${phone}）${called_minutes}分钟前按了呼叫键，"
        "${owner}（电话${owner_phone}）${minutes}分钟前接单，至今未到达。"
        "如您能接手，请在来电中按1，工单将转给您。工单${ticket}。"
    ),
    "ticket_taken": "【必到】工单${ticket}已由${owner}接单，您无需前往。",
    "ticket_accepted": (
        "【必到】您已接下工单${ticket}：${resident}，${place}，电话${phone}。"
        + _ARRIVE_BY_BOX
        + "；办结后请告知管理员登记。"
    ),
    "ticket_accepted_link": (
        "【必到】您已接下工单${ticket}：${resident}，${place}，电话${phone}。"
        + _ARRIVE_BY_BOX
        + "；到达、办结或转交也可在此报告：${link}"
    ),
    "ticket_pressed_again_accepted": (
        "【必到】${resident}（${place}，电话${phone}）在您接单${minutes}分钟后又按了呼叫键，"
        "仍在等您，请尽快前往。工单${ticket}。"
    ),
    "ticket_pressed_again_on_site": (
        "【必到】${resident}（${place}，电话${phone}）在您到达${minutes}分钟后又按了呼叫键，"
        "请回去看看或回电。工单${ticket}。"
    ),
    "ticket_reassigned_to_you": (
        "【必到】工单${ticket}由${previous}转交给您：${resident}，${place}，电话${phone}，"
        "请尽快前往。"
    ),
    "ticket_reassigned_sms": (
        "【必到】工单${ticket}由${previous}转交给您：${resident}，${place}，电话${phone}。"
        + _ARRIVE_BY_BOX
        + "；办结后请告知管理员登记。"
    ),
    "ticket_reassigned_sms_link": (
        "【必到】工单${ticket}由${previous}转交给您：${resident}，${place}，电话${phone}。"
        + _ARRIVE_BY_BOX
        + "；到达、办结或转交也可在此报告：${link}"
    ),
    "ticket_taken_over": (
        "【必到】您已接手工单${ticket}（原由${previous}接单）：${resident}，${place}，"
        "电话${phone}。" + _ARRIVE_BY_BOX + "；办结后请告知管理员登记。"
    ),
    "ticket_taken_over_link": (
        "【必到】您已接手工单${ticket}（原由${previous}接单）：${resident}，${place}，"
        "电话${phone}。" + _ARRIVE_BY_BOX + "；到达、办结或转交也可在此报告：${link}"
    ),
    "ticket_reassigned_away": (
        "【必到】工单${ticket}已转交给${owner}（电话${owner_phone}），现由其负责。"
    ),
    "ticket_cancelled_by_resident": (
        "【必到】${resident}（${place}）取消了呼叫。请回电${phone}确认老人是否平安。工单${ticket}。"
    ),
    "ticket_cancelled_no_phone": (
        "【必到】${resident}（${place}）取消了呼叫。老人没有登记电话，请上门或联系家属确认是否平安。"
        "工单${ticket}。"
    ),
    "ticket_overdue": "【必到】工单${ticket}（${place}）已超过办理时限，请督办。",
    "ticket_review": (
        "【必到】${resident}（${place}，电话${phone}）对工单${ticket}的处理（${owner}负责）"
        "表示不满意，请回访。"
    ),
    "ticket_access": (
        "【必到】工单${ticket}：${resident}家钥匙盒密码${key_safe}；健康提示：${health}。"
        "仅供上门使用，请勿转发。"
    ),
    "family_called": (
        "【必到】您的家人${resident}刚在家（${place}）按了呼叫键，正在通知村里的负责人。工单${ticket}。"
    ),
    "family_accepted": (
        "【必到】${owner}（电话${owner_phone}）已接下${resident}的呼叫，正在赶往${place}。工单${ticket}。"
    ),
    "family_arrived": "【必到】${owner}已到达${resident}家（${place}）。工单${ticket}。",
    "family_resolved": "【必到】${resident}的呼叫已办结（${owner}处理）。工单${ticket}。",
    "digest": "【必到】您有${count}条提醒：${items}",
    "digest_same": "${text}（同一提醒共${count}条）",
    "not_recorded": "未登记",
    "voice_menu": "接单并前往请按1，无法前往、转给下一位请按2，重听请按9。",
    "voice_menu_take_over": "接手此工单并前往请按1，重听请按9。",
    "voice_menu_owner": "收到请按1，重听请按9。",
    "voice_accepted": (
        "您已接单，请尽快前往。老人会收到正在赶来的提示。稍后您会收到一条短信，告诉您如何报告进度。"
        "到达后请在老人的呼叫盒上长按绿色按键，记录您已到达。"
    ),
    "voice_you_own": (
        "这个工单由您负责，老人仍在等您，请尽快前往。到达后请在老人的呼叫盒上长按绿色按键。"
    ),
    "voice_taken_over": (
        "工单已转给您，请尽快前往。稍后您会收到一条短信。到达后请在老人的呼叫盒上长按绿色按键。"
    ),
    "voice_owner_ack": "好的。到达后请在老人的呼叫盒上长按绿色按键，记录您已到达。",
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
    # -- the water watch (issue 13) -----------------------------------------------------
    "no_water_alarm": (
        "【必到】用水预警：${resident}（${place}，电话${phone}）家从${since}到${now}，"
        "除夜间外已${hours}小时没有用水，也没有按呼叫盒。请马上打电话或上门查看。工单${ticket}。"
    ),
    "no_water_alarm_morning": (
        "【必到】用水预警：${resident}（${place}，电话${phone}）家平时${usual}前就会用水，"
        "今天到${now}还没有用水：从${since}起没有用水，也没有按呼叫盒。请马上打电话或上门查看。"
        "工单${ticket}。"
    ),
    "leak_alarm": (
        "【必到】用水预警：${resident}（${place}，电话${phone}）家的水表从${since}起已连续"
        "${hours}小时不停走水，可能漏水，也可能有人在浴室摔倒。请马上打电话或上门查看。工单${ticket}。"
    ),
    "no_water_alarm_escalated": (
        "【必到】${resident}（${place}，电话${phone}）家长时间没有用水的预警已发出${minutes}分钟，"
        "仍无人接手，现转由您查看。工单${ticket}。"
    ),
    "leak_alarm_escalated": (
        "【必到】${resident}（${place}，电话${phone}）家水表连续走水的预警已发出${minutes}分钟，"
        "仍无人接手，现转由您查看。工单${ticket}。"
    ),
    "no_water_all_clear": (
        "【必到】${resident}（${place}）家${now}又用上水了，用水预警解除。工单${ticket}。"
    ),
    "no_water_all_clear_key": (
        "【必到】${resident}（${place}）${now}按了呼叫盒的键，用水预警解除。工单${ticket}。"
    ),
    "no_water_all_clear_answer": (
        "【必到】${resident}（${place}）${now}接了平安确认电话并按1报了平安，用水预警解除。"
        "工单${ticket}。"
    ),
    "no_water_all_clear_away": (
        "【必到】${resident}（${place}）家已登记外出至${until}，用水预警解除。工单${ticket}。"
    ),
    "leak_all_clear": (
        "【必到】${resident}（${place}）家的水表${now}停止走水，连续用水预警解除。工单${ticket}。"
    ),
    "alarm_accepted": (
        "【必到】工单${ticket}（${resident}家的用水预警）由您查看：${place}，电话${phone}。"
        "查看后请告知管理员结果。"
    ),
    "alarm_accepted_link": (
        "【必到】工单${ticket}（${resident}家的用水预警）由您查看：${place}，电话${phone}。"
        "到达、办结或转交可在此报告：${link}"
    ),
    "alarm_reassigned_sms": (
        "【必到】工单${ticket}（${resident}家的用水预警）由${previous}转交给您：${place}，"
        "电话${phone}。查看后请告知管理员结果。"
    ),
    "alarm_reassigned_sms_link": (
        "【必到】工单${ticket}（${resident}家的用水预警）由${previous}转交给您：${place}，"
        "电话${phone}。可在此报告：${link}"
    ),
    "alarm_taken_over": (
        "【必到】您已接手工单${ticket}（${resident}家的用水预警，原由${previous}接手）：${place}，"
        "电话${phone}。查看后请告知管理员结果。"
    ),
    "alarm_taken_over_link": (
        "【必到】您已接手工单${ticket}（${resident}家的用水预警，原由${previous}接手）：${place}，"
        "电话${phone}。可在此报告：${link}"
    ),
    "alarm_not_arrived": (
        "【必到】${resident}（${place}，电话${phone}）家的用水预警：${owner}（电话${owner_phone}）"
        "${minutes}分钟前接手，至今未到达。通话中按1由您接手前往。工单${ticket}。"
    ),
    "alarm_family_accepted": (
        "【必到】${owner}（电话${owner_phone}）已接手${resident}家的用水预警，正去${place}查看。"
        "工单${ticket}。"
    ),
    "alarm_family_resolved": (
        "【必到】${resident}家的用水预警已处理完毕（${owner}）。工单${ticket}。"
    ),
    "water_away_reminder": (
        "【必到】${resident}（${place}）登记外出至${until}，到${now}家中仍未用水。"
        "请确认老人是否已平安回家；如行程有变，请告知书记重新登记外出。"
    ),
    "water_watch_blind": (
        "【必到】${resident}（${place}）家的水表自${since}起没有信号，用水看护暂时失效，"
        "请多留意老人情况。"
    ),
    "water_watch_restored": (
        "【必到】${resident}（${place}）家的水表${now}恢复信号，用水看护已恢复。"
    ),
    "water_first_use_today": (
        "【必到】今日用水：${resident}（${place}）家今天${first_use}第一次用水。"
    ),
    "voice_menu_alarm": "我去查看请按1，无法前往、转给他人请按2，重听请按9。",
    # "Are you OK?" on the resident's own phone (the water watch).
    "water_ask_resident": (
        "您好，这里是必到平安服务，给${resident}打电话。您家从${since}到现在已经${hours}小时"
        "没有用水（夜里不算）。您平安吗？"
    ),
    "water_ask_resident_morning": (
        "您好，这里是必到平安服务，给${resident}打电话。您平时${usual}前就会用水，"
        "今天到现在家里还没有用水。您平安吗？"
    ),
    "voice_menu_water_ask": (
        "平安请按1；不在家请按2，我们会登记您外出${away_days}天，这期间不再询问，"
        "您回家用水后自动恢复；重听请按9。如果${minutes}分钟内没有回应，我们会请人上门看您。"
    ),
    "voice_water_away": "好的，已登记您外出${away_days}天。回家用水后会自动恢复看护，一路平安。",
    "voice_water_ok": "谢谢您，已经记下您平安。",
    "voice_alarm_accepted": (
        "您已接手，请马上打电话或上门查看。稍后您会收到一条短信，告诉您如何报告结果。"
    ),
    # Device health: to the installers of the household's area.
    "health_box_offline": (
        "【必到】${resident}家（${place}）的呼叫盒${device}自${since}起没有信号，"
        "老人现在按键无法呼叫。请尽快检查电源和网络。"
    ),
    "health_box_offline_ok": (
        "【必到】${resident}家（${place}）的呼叫盒${device}已恢复信号"
        "（${since}至${until}没有信号）。"
    ),
    "health_meter_offline": (
        "【必到】${resident}家（${place}）的水表${device}自${since}起没有数据，"
        "用水看护暂时无法判断。请检查水表的电池和网络。"
    ),
    "health_meter_offline_ok": (
        "【必到】${resident}家（${place}）的水表${device}已恢复数据（${since}至${until}没有数据）。"
    ),
    "health_box_low_battery": (
        "【必到】${resident}家（${place}）的呼叫盒${device}自${since}起电量低，请尽快上门更换电池。"
    ),
    "health_box_low_battery_ok": (
        "【必到】${resident}家（${place}）的呼叫盒${device}电量已恢复正常"
        "（${since}至${until}电量低）。"
    ),
    "health_meter_low_battery": (
        "【必到】${resident}家（${place}）的水表${device}自${since}起电量低，请尽快上门更换电池。"
    ),
    "health_meter_low_battery_ok": (
        "【必到】${resident}家（${place}）的水表${device}电量已恢复正常（${since}至${until}电量低）。"
    ),
    "health_box_tamper": (
        "【必到】${resident}家（${place}）的呼叫盒${device}在${since}报告外壳被打开或被移动，"
        "请上门查看。"
    ),
    "health_box_tamper_ok": (
        "【必到】${resident}家（${place}）的呼叫盒${device}外壳报警已解除（${since}至${until}）。"
    ),
    "health_meter_tamper": (
        "【必到】${resident}家（${place}）的水表${device}在${since}报告被拆动，请上门查看。"
    ),
    "health_meter_tamper_ok": (
        "【必到】${resident}家（${place}）的水表${device}拆动报警已解除（${since}至${until}）。"
    ),
    "health_box_power_loss": (
        "【必到】${resident}家（${place}）的呼叫盒${device}自${since}起断电，正在用电池工作。"
        "请查看电源。"
    ),
    "health_box_power_loss_ok": (
        "【必到】${resident}家（${place}）的呼叫盒${device}已恢复供电（${since}至${until}断电）。"
    ),
    "health_meter_power_loss": (
        "【必到】${resident}家（${place}）的水表${device}自${since}起断电。请查看电源。"
    ),
    "health_meter_power_loss_ok": (
        "【必到】${resident}家（${place}）的水表${device}已恢复供电（${since}至${until}断电）。"
    ),
    # Device health: to the family of a resident living alone (call boxes only).
    "health_family_offline": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒自${since}起没有信号，"
        "老人现在按键无法呼叫。已转告设备维护人员，请您先打电话问候老人。"
    ),
    "health_family_offline_ok": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒已恢复信号（${since}至${until}没有信号），"
        "按键又可以呼叫了。"
    ),
    "health_family_low_battery": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒自${since}起电量低，"
        "已转告设备维护人员更换电池。"
    ),
    "health_family_low_battery_ok": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒电量已恢复正常（${since}至${until}电量低）。"
    ),
    "health_family_tamper": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒在${since}报告外壳被打开或被移动。"
        "已转告设备维护人员，请您打电话问问老人。"
    ),
    "health_family_tamper_ok": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒外壳报警已解除（${since}至${until}）。"
    ),
    "health_family_power_loss": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒自${since}起断电，正在用电池工作，"
        "可能是家里停电。已转告设备维护人员，请您打电话问候老人。"
    ),
    "health_family_power_loss_ok": (
        "【必到】您的家人${resident}家里（${place}）的呼叫盒已恢复供电（${since}至${until}断电）。"
    ),
}
