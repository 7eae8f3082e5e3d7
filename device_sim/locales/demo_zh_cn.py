"""`bidao demo` in Simplified Chinese (shown first): labels, the story's words, what to do next."""

from __future__ import annotations

WORDS: dict[str, str] = {
    # labels of the lines that say where things are
    "gateway": "网关",
    "phones": "电话网",
    "data": "数据",
    "village": "村庄",
    "dashboard": "值班台",
    "login": "登录",
    "password": "密码",
    "setting": "演示设定",
    "box": "呼叫盒",
    "browser": "手机浏览器",
    # the opening
    "title": "必到演示：一个村、三位独居老人的呼叫盒、村干部和家属的手机，都在这台电脑上。",
    "starting": "正在启动网关和模拟电话网，导入村庄……",
    "link_mqtt": "设备经 MQTT 连接网关自己启动的 mosquitto：127.0.0.1:{port}",
    "link_serial": "设备经串口线连接（不需要消息服务器）：{url}",
    "phones_note": "模拟的电话网，收下每条短信和每个电话",
    "data_temporary": "退出时删除",
    "data_kept": "退出后保留",
    "village_summary": (
        "{place}：{areas}个片、{groups}个组、{neighbourhoods}个邻，{households}户"
        "（{alone}位独居老人有呼叫盒），{contacts}位联系人"
    ),
    "login_note": "{name}，村书记",
    "setting_retry": "没接的电话{seconds}秒后再拨一次（默认60秒）",
    "watch_along": "现在就可以在浏览器里打开值班台，边看边听。",
    # story 1
    "s1_press": "故事一：{name}（独居，{address}）按下呼叫盒的绿键。",
    "s1_arrive": "{helper}到了{name}家门口，长按她呼叫盒上的绿键，报告已到达。",
    "s1_link": "{helper}把事情办好了，打开短信里的链接，报告已解决。",
    "s1_rate": "{name}很满意，按了大拇指向上键。",
    # story 2
    "s2_phones": ("故事二：没人接电话的时候。{names}的电话都没人接（演示这样设定了电话网）。"),
    "s2_press": "{name}（独居，{address}）按下呼叫盒的绿键。",
    # what was seen
    "ok_on_the_way": "{helper}接了电话，按1接单；呼叫盒告诉{name}有人正在赶来",
    "ok_arrived": "呼叫盒确认{helper}已到达",
    "ok_resolved": "工单{ticket}已解决，呼叫盒请{name}评价",
    "ok_rated": "工单{ticket}已评价：满意",
    "ok_escalated": "{secretary}没接，工单{ticket}沿着呼叫链升级到{deputy}",
    "ok_exhausted": "呼叫链上的人都没接：呼叫盒如实告诉{name}，工单{ticket}仍待接单",
    "not_seen": "没等到（{seconds}秒内）：{what}",
    # events
    "press": "按键",
    "long": "长按",
    "acked": "网关已确认",
    "wont_answer": "不接听",
    "opens": "打开",
    "submits": "提交：已解决，一般事项，备注“{note}”",
    "page": "页面",
    "page_resolved": "显示已解决",
    "note": "灯泡坏了，已换好",
    # after the story
    "over": "故事讲完了。演示继续运行，按 Ctrl-C 停止。",
    "ready": "一切就绪。演示继续运行，按 Ctrl-C 停止。",
    "next_accept": "在值班台打开工单{ticket}，点“我来接单”：{name}的呼叫盒会说有人正在赶来。",
    "next_box": "按{name}的呼叫盒：",
    "next_answer": "让{name}重新接电话：",
    "next_received": "每条短信和每个电话：",
    "next_tickets": "工单列表：",
    # stopping
    "stopping": "正在停止……",
    "still_stopping": "正在停止，请稍候（不会留下任何进程）。",
    "stopped": "已全部停止。",
    "gateway_died": "网关意外停止（退出码{code}），它的日志最后说：",
    "story_failed": "故事没有讲完，演示继续运行，按 Ctrl-C 停止。",
}
