"""Every word of `bidao report` and its CSV/Excel export, one dict per language.

Keys are shared; `{name}` fields are filled with str.format. Chinese is the default: the
words follow the programmes the officials run (Bozhou's 预警颜色, Shaoshan's 蓝黄红牌 and
限时办结, Yeji's 群众呼叫、书记必到 and 满意率).
"""

from __future__ import annotations

from typing import Final

ZH: Final[dict[str, str]] = {
    "title": "必到（群众呼叫、书记必到）工作报表",
    "period": "统计期：{start} 至 {end}（近{days}天）；预警颜色为此刻（{end}）的情况",
    # warning colours
    "colours.title": "一、预警颜色（此刻）",
    "colours.unit": "单位",
    "colours.level": "层级",
    "colours.colour": "颜色",
    "colours.live": "未办结",
    "colours.overdue": "其中超时",
    "colours.oldest": "最久已等",
    "legend.title": "颜色说明：",
    "legend.red": (
        "红：超时未办 {red_overdue} 件及以上，或有呼叫、用水报警超过 {red_oldest} 仍未办结"
    ),
    "legend.orange": "橙：超时未办 {orange_overdue} 件及以上",
    "legend.yellow": "黄：超时未办 {yellow_overdue} 件及以上，或未办结 {yellow_open} 件及以上",
    "legend.green": "绿：以上都没有",
    "legend.overdue": (
        "“超时”指：{accept} 内无人接单，接单后 {arrive} 内未到场，超过办理时限，或已逐级上报。"
    ),
    "legend.counted": (
        "“未办结”和“超时”都含呼叫和用水报警：报警和呼叫一样要有人接单、上门查看，"
        "无人接手也逐级上报。"
    ),
    # statistics per unit
    "stats.title": "二、近{days}天的呼叫（按单位，含下级）",
    "stats.unit": "单位",
    "stats.requests": "呼叫",
    "stats.closed": "已办结",
    "stats.closure": "办结率",
    "stats.rated": "已评价",
    "stats.satisfaction": "满意率",
    "stats.reviews": "差评",
    "stats.cancelled": "取消",
    "stats.escalated": "上报",
    "stats.accept_on_time": "准时接单",
    "stats.arrive_on_time": "准时到场",
    "stats.day_on_time": "限时办结",
    "stats.notes": (
        "办结率 = 已办结 ÷（呼叫数减去群众自己取消的）；满意率 = 点赞 ÷ 已评价；"
        "差评 = 群众按了“不满意”，每个差评都要由乡镇复核；上报 = 因超时逐级上报的呼叫。"
    ),
    "stats.notes_clocks": (
        "准时接单 = {accept} 内有人接单；准时到场 = 接单后 {arrive} 内到场；"
        "限时办结 = 在办理时限内办结（{limits}）。"
    ),
    "stats.unplaced": (
        "另有 {count} 个呼叫来自没有绑定住户的呼叫器，无法计入任何单位，请尽快绑定。"
    ),
    # plain words for times
    "times.title": "接单和到场用时：",
    "times.calls": "{unit}：{calls} 个呼叫（不含群众自己取消的）",
    "times.half": "，一半的呼叫在 {t} 内有人接单",
    "times.half_not": "，有人接单的不到一半",
    "times.ninety": "，九成在 {t} 内",
    "times.ninety_not": "，有人接单的不到九成",
    "times.arrive": "；到场 {arrived} 次，其中一半在接单后 {half} 内到场，九成在 {ninety} 内",
    "times.no_arrival": "；还没有到场记录",
    "times.end": "。",
    # people
    "people.title": "三、接单人员（近{days}天）",
    "people.name": "姓名",
    "people.role": "职务",
    "people.place": "所在",
    "people.accepted": "接单",
    "people.closed": "已办结",
    "people.none": "近{days}天没有人接单。",
    # cards
    "cards.title": "四、邻长考核牌（近{days}天）",
    "cards.name": "姓名",
    "cards.place": "所在",
    "cards.card": "牌",
    "cards.on_time": "准时率",
    "cards.tickets": "接单",
    "cards.no_tickets": "无接单",
    "cards.none": "网格中没有邻长。",
    "cards.legend": (
        "蓝牌：准时率 {blue} 及以上；黄牌：{yellow} 至 {blue}；红牌：低于 {yellow}；"
        "没有接单的为蓝牌。准时率 =（准时接单 + 准时到场）÷（接单 + 到场）。"
    ),
    # boxes
    "boxes.unused": "{days}天内没人按过呼叫键的呼叫器：{count} 台",
    # call boxes offline for more than a day: a promise broken
    "promise.title": "五、呼叫盒断线超过一天（近{days}天；断线期间老人按键无法呼叫）",
    "promise.line": "{unit}：{boxes} 台呼叫盒断线超过一天，统计期内共 {hours} 小时无法呼叫",
    "promise.unplaced": "未绑定住户的呼叫盒",
    "promise.none": "近{days}天没有呼叫盒断线超过一天。",
    "promise.notes": (
        "断线超过一天 = 呼叫盒连续一天以上没有信号（从判定离线到再次收到信号）；"
        "小时数只计统计期内的部分。"
    ),
    # words
    "level.county": "县区",
    "level.township": "乡镇",
    "level.village": "村",
    "level.area": "片",
    "level.group": "组",
    "level.neighbourhood": "邻",
    "colour.red": "红",
    "colour.orange": "橙",
    "colour.yellow": "黄",
    "colour.green": "绿",
    "card.blue": "蓝牌",
    "card.yellow": "黄牌",
    "card.red": "红牌",
    "role.village_secretary": "村书记",
    "role.deputy_secretary": "村副书记",
    "role.grid_worker": "网格员",
    "role.neighbour_chief": "邻长",
    "role.group_leader": "组长",
    "role.area_chief": "片长",
    "role.township_duty": "乡镇值班员",
    "role.family": "家属",
    "role.installer": "安装维护员",
    "category.urgent": "紧急",
    "category.ordinary": "一般",
    "category.hard": "较难",
    "category.complex": "复杂",
    "limit": "{category}{duration}",
    "limit.sep": "、",
    "unknown_person": "（已删除的联系人）",
    "none": "-",
    "seconds": "{n}秒",
    "minutes": "{n}分钟",
    "hours": "{n}小时",
    "days": "{n}天",
    "percent": "{n}%",
    "place.sep": "",
    # export
    "export.done": "已导出 {path}（{rows} 行）",
    "export.kind": "类别",
    "export.kind.unit": "单位",
    "export.kind.person": "人员",
    "export.level_or_role": "层级或职务",
    "export.name": "名称",
    "export.place": "所属",
    "export.code": "编码",
    "export.colour": "预警颜色",
    "export.live": "未办结",
    "export.overdue": "超时未办",
    "export.requests": "呼叫数",
    "export.closed": "已办结",
    "export.closure": "办结率(%)",
    "export.rated": "已评价",
    "export.satisfied": "满意",
    "export.satisfaction": "满意率(%)",
    "export.reviews": "差评",
    "export.cancelled": "取消",
    "export.escalated": "上报",
    "export.accepted": "有人接单",
    "export.accept_on_time": "准时接单率(%)",
    "export.accept_half": "一半呼叫接单用时(分钟)",
    "export.accept_ninety": "九成呼叫接单用时(分钟)",
    "export.arrived": "到场",
    "export.arrive_on_time": "准时到场率(%)",
    "export.day_on_time": "限时办结率(%)",
    "export.offline_boxes": "断线超过一天的呼叫盒",
    "export.offline_hours": "断线无法呼叫(小时)",
    "export.sheet.figures": "统计",
    "export.sheet.cards": "邻长考核牌",
    "export.sheet.legend": "说明",
    # alarms of the water watch, by rule, with what they turned out to be
    "alarms.title": "六、近{days}天的用水报警（按单位，含下级；报警不是呼叫，不计入第二部分）",
    "alarms.unit": "单位",
    "alarms.kind": "类型",
    "alarms.count": "报警",
    "alarms.real": "标注真实",
    "alarms.false": "标注误报",
    "alarms.unlabelled": "未标注",
    "alarms.rate": "误报率",
    "alarms.causes": "误报原因",
    "alarms.none": "近{days}天没有用水报警。",
    "alarms.notes": (
        "误报率 = 标注误报 ÷ 已标注的报警（真实 + 误报）：只算已标注的，未标注的既不算真实"
        "也不算误报。例如 4 个报警中 1 个真实、2 个误报、1 个未标注，误报率为 2 ÷ 3 = 67%。"
        "报警由处理人在短信链接页面上标注，或用 bidao ticket N resolve --outcome、"
        "bidao ticket N label 标注。"
    ),
    "alarm.no_water": "无用水报警",
    "alarm.leak": "持续用水报警",
    "cause.late_rising": "晚起",
    "cause.away": "外出",
    "cause.hospital": "住院",
    "cause.meter_fault": "水表故障",
    "cause.other": "其他",
    "cause": "{cause}{n}",
    "cause.sep": "、",
    "export.alarm": "{kind}：{what}",
    "export.alarm.rate": "误报率(%)",
    # errors
    "error.days": "--days 必须是大于 0、不超过 {max} 的天数，收到 {value}",
    "error.write": "无法写入 {path}：{reason}",
}

EN: Final[dict[str, str]] = {
    "title": "Bidao (residents call, the secretary comes): report",
    "period": "Period: {start} to {end} (last {days} days); warning colours as of now ({end})",
    "colours.title": "1. Warning colours (now)",
    "colours.unit": "Unit",
    "colours.level": "Level",
    "colours.colour": "Colour",
    "colours.live": "Open",
    "colours.overdue": "Overdue",
    "colours.oldest": "Longest wait",
    "legend.title": "What the colours mean:",
    "legend.red": (
        "red: {red_overdue} or more overdue, or a call or water alarm still open after more "
        "than {red_oldest}"
    ),
    "legend.orange": "orange: {orange_overdue} or more overdue",
    "legend.yellow": "yellow: {yellow_overdue} or more overdue, or {yellow_open} or more open",
    "legend.green": "green: none of the above",
    "legend.overdue": (
        '"Overdue": nobody accepted within {accept}, nobody arrived within {arrive} of '
        "accepting, past the time limit, or passed up the chain."
    ),
    "legend.counted": (
        '"Open" and "overdue" count calls and water alarms alike: an alarm, like a call, '
        "needs someone to accept it and go to check, and is passed up the chain when nobody "
        "does."
    ),
    "stats.title": "2. Calls in the last {days} days (by unit, with the units below it)",
    "stats.unit": "Unit",
    "stats.requests": "Calls",
    "stats.closed": "Closed",
    "stats.closure": "Closed %",
    "stats.rated": "Rated",
    "stats.satisfaction": "Satisfied %",
    "stats.reviews": "Thumbs-down",
    "stats.cancelled": "Cancelled",
    "stats.escalated": "Escalated",
    "stats.accept_on_time": "Accepted on time",
    "stats.arrive_on_time": "Arrived on time",
    "stats.day_on_time": "Within limit",
    "stats.notes": (
        "Closed % = closed / (calls - cancelled by the resident); satisfied % = thumbs-up / "
        "rated; each thumbs-down is to be reviewed by the township; escalated = passed up the "
        "chain for being late."
    ),
    "stats.notes_clocks": (
        "Accepted on time = within {accept}; arrived on time = within {arrive} of accepting; "
        "within limit = resolved within the time limit ({limits})."
    ),
    "stats.unplaced": (
        "{count} more calls came from boxes attached to no household and count for no unit: "
        "attach those boxes."
    ),
    "times.title": "Time to accept and to arrive:",
    "times.calls": "{unit}: {calls} calls (not counting those the resident cancelled)",
    "times.half": ", half were accepted within {t}",
    "times.half_not": ", fewer than half were accepted",
    "times.ninety": ", nine in ten within {t}",
    "times.ninety_not": ", fewer than nine in ten were accepted",
    "times.arrive": (
        "; {arrived} arrivals, half within {half} of accepting, nine in ten within {ninety}"
    ),
    "times.no_arrival": "; no arrivals recorded yet",
    "times.end": ".",
    "people.title": "3. People who accepted calls (last {days} days)",
    "people.name": "Name",
    "people.role": "Role",
    "people.place": "Where",
    "people.accepted": "Accepted",
    "people.closed": "Closed",
    "people.none": "Nobody accepted a call in the last {days} days.",
    "cards.title": "4. Neighbour chiefs' cards (last {days} days)",
    "cards.name": "Name",
    "cards.place": "Where",
    "cards.card": "Card",
    "cards.on_time": "On time",
    "cards.tickets": "Accepted",
    "cards.no_tickets": "none accepted",
    "cards.none": "The grid has no neighbour chiefs.",
    "cards.legend": (
        "blue: on time {blue} or more; yellow: {yellow} to {blue}; red: below {yellow}; "
        "blue when nothing was accepted. On time = (accepted on time + arrived on time) / "
        "(accepted + arrived)."
    ),
    "boxes.unused": "Call boxes nobody pressed in {days} days: {count}",
    "promise.title": (
        "5. Call boxes offline for more than a day (last {days} days; while offline the "
        "resident's key reached nobody)"
    ),
    "promise.line": (
        "{unit}: {boxes} call boxes offline for more than a day, {hours} hours without a "
        "way to call within the period"
    ),
    "promise.unplaced": "boxes with no household",
    "promise.none": "No call box was offline for more than a day in the last {days} days.",
    "promise.notes": (
        "Offline for more than a day = a call box without a signal for over a day at a stretch "
        "(from being declared offline to its next frame); only the hours within the period count."
    ),
    "level.county": "county",
    "level.township": "township",
    "level.village": "village",
    "level.area": "area",
    "level.group": "group",
    "level.neighbourhood": "neighbourhood",
    "colour.red": "red",
    "colour.orange": "orange",
    "colour.yellow": "yellow",
    "colour.green": "green",
    "card.blue": "blue",
    "card.yellow": "yellow",
    "card.red": "red",
    "role.village_secretary": "village secretary",
    "role.deputy_secretary": "deputy secretary",
    "role.grid_worker": "grid worker",
    "role.neighbour_chief": "neighbour chief",
    "role.group_leader": "group leader",
    "role.area_chief": "area chief",
    "role.township_duty": "township duty officer",
    "role.family": "family",
    "role.installer": "installer",
    "category.urgent": "urgent",
    "category.ordinary": "ordinary",
    "category.hard": "hard",
    "category.complex": "complex",
    "limit": "{category} {duration}",
    "limit.sep": ", ",
    "unknown_person": "(removed contact)",
    "none": "-",
    "seconds": "{n} seconds",
    "minutes": "{n} minutes",
    "hours": "{n} hours",
    "days": "{n} days",
    "percent": "{n}%",
    "place.sep": "/",
    "export.done": "exported {path} ({rows} rows)",
    "export.kind": "Kind",
    "export.kind.unit": "unit",
    "export.kind.person": "person",
    "export.level_or_role": "Level or role",
    "export.name": "Name",
    "export.place": "Within",
    "export.code": "Code",
    "export.colour": "Warning colour",
    "export.live": "Open",
    "export.overdue": "Overdue",
    "export.requests": "Calls",
    "export.closed": "Closed",
    "export.closure": "Closed (%)",
    "export.rated": "Rated",
    "export.satisfied": "Satisfied",
    "export.satisfaction": "Satisfied (%)",
    "export.reviews": "Thumbs-down",
    "export.cancelled": "Cancelled",
    "export.escalated": "Escalated",
    "export.accepted": "Accepted",
    "export.accept_on_time": "Accepted on time (%)",
    "export.accept_half": "Half accepted within (min)",
    "export.accept_ninety": "Nine in ten accepted within (min)",
    "export.arrived": "Arrived",
    "export.arrive_on_time": "Arrived on time (%)",
    "export.day_on_time": "Within limit (%)",
    "export.offline_boxes": "Call boxes offline over a day",
    "export.offline_hours": "Hours unable to call",
    "export.sheet.figures": "Figures",
    "export.sheet.cards": "Chiefs' cards",
    "export.sheet.legend": "Legend",
    "alarms.title": (
        "6. Water alarms in the last {days} days (by unit, with the units below it; alarms "
        "are not calls and are not in part 2)"
    ),
    "alarms.unit": "Unit",
    "alarms.kind": "Rule",
    "alarms.count": "Alarms",
    "alarms.real": "Real",
    "alarms.false": "False",
    "alarms.unlabelled": "Not labelled",
    "alarms.rate": "False %",
    "alarms.causes": "Why false",
    "alarms.none": "No water alarms in the last {days} days.",
    "alarms.notes": (
        "False % = labelled false / labelled (real + false): only the labelled alarms count; "
        "one nobody labelled is neither real nor false. For example, of 4 alarms 1 real, "
        "2 false and 1 not labelled, the false-alarm rate is 2 / 3 = 67%. The one who "
        "resolves an alarm labels it on the page behind the SMS link, or with "
        "bidao ticket N resolve --outcome or bidao ticket N label."
    ),
    "alarm.no_water": "no water used",
    "alarm.leak": "continuous flow",
    "cause.late_rising": "late rising",
    "cause.away": "away",
    "cause.hospital": "in hospital",
    "cause.meter_fault": "meter fault",
    "cause.other": "other",
    "cause": "{cause} {n}",
    "cause.sep": ", ",
    "export.alarm": "{kind}: {what}",
    "export.alarm.rate": "false (%)",
    "error.days": "--days must be a positive number of days, got {value} (at most {max})",
    "error.write": "cannot write {path}: {reason}",
}

LANGUAGES: Final[dict[str, dict[str, str]]] = {"zh": ZH, "en": EN}
