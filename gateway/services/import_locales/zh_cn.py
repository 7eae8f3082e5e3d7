"""`bidao import` in Simplified Chinese: headers, values and every message."""

from __future__ import annotations

# The Chinese headers a file may use instead of the English ones (the first is the one shown).
HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "units": {
        "code": ("代码", "编码", "单位代码"),
        "level": ("层级", "级别"),
        "name": ("名称", "单位名称"),
        "parent_code": ("上级代码", "上级编码"),
    },
    "households": {
        "household_code": ("户号", "户编码"),
        "neighbourhood_code": ("所属邻代码", "邻代码"),
        "address": ("地址", "住址"),
        "resident_name": ("姓名", "居民姓名"),
        "resident_phone": ("电话", "居民电话"),
        "lives_alone": ("独居",),
        "five_guarantee": ("五保",),
        "needs_care": ("需照护",),
        "consent": ("同意共享",),
        "key_safe_code": ("钥匙盒密码",),
        "health_notes": ("健康提示", "健康备注"),
        "device_id": ("呼叫盒编号", "设备编号"),
        "device_key": ("呼叫盒密钥", "设备密钥"),
    },
    "contacts": {
        "name": ("姓名",),
        "role": ("角色", "职务"),
        "unit_code": ("单位代码",),
        "household_code": ("户号",),
        "phone": ("电话", "手机"),
        "language": ("语言",),
        "available_from": ("值守开始", "开始时间"),
        "available_to": ("值守结束", "结束时间"),
        "notify": ("通知", "通知事项"),
    },
}

# Cell values a file may write in Chinese, by what they stand for.
VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "level": {
        "county": ("县", "区", "县（区）"),
        "township": ("镇", "乡", "街道", "乡镇"),
        "village": ("村", "社区"),
        "area": ("片", "片区"),
        "group": ("组", "村民小组"),
        "neighbourhood": ("邻",),
    },
    "role": {
        "village_secretary": ("书记", "村书记", "村党组织书记"),
        "deputy_secretary": ("副书记", "村副书记"),
        "grid_worker": ("网格员",),
        "neighbour_chief": ("邻长",),
        "group_leader": ("组长", "村民组长"),
        "area_chief": ("片长",),
        "township_duty": ("镇值班", "乡镇值班", "值班"),
        "family": ("家属", "亲属", "子女"),
        "installer": ("安装维护员", "安装员", "维护员"),
    },
    "language": {"zh-CN": ("中文", "汉语", "zh", "zh-cn"), "en": ("英文", "英语", "English")},
    "flag": {"1": ("是", "有", "√"), "0": ("否", "无")},
    "notify": {
        "called": ("呼叫",),
        "accepted": ("接单",),
        "arrived": ("到达",),
        "resolved": ("办结", "解决"),
        "first_use": ("早安", "今日用水", "首次用水"),
        "none": ("不通知",),
    },
}

# How rule parameters are named in messages.
WORDS: dict[str, str] = {
    "county": "县（区）",
    "township": "乡镇",
    "village": "村",
    "area": "片",
    "group": "组",
    "neighbourhood": "邻",
    "units": "单位",
    "households": "住户",
    "contacts": "联系人",
    "unit": "这个单位",
    "household": "这一户",
    "box": "这个呼叫盒",
    "contact": "这个联系人（同角色、同单位或同户、同电话）",
    "water_meter": "水表",
    "call_box": "呼叫盒",
    "village_secretary": "书记",
    "deputy_secretary": "副书记",
    "grid_worker": "网格员",
    "neighbour_chief": "邻长",
    "group_leader": "组长",
    "area_chief": "片长",
    "township_duty": "镇值班",
    "family": "家属",
    "installer": "安装维护员",
}

MESSAGES: dict[str, str] = {
    # The file as a whole
    "not_utf8": (
        "不是UTF-8编码的文本（字节0x${byte}）；请在Excel中“另存为”“CSV UTF-8（逗号分隔）”"
        "（中文Windows上普通CSV是GBK编码）"
    ),
    "not_csv": "不是CSV文件：${reason}",
    "empty": "空文件：没有表头行",
    "too_many_rows": "超过${max}行；请拆分成几个文件",
    "missing_column": "缺少必需的列",
    "unknown_column": "${kind}文件没有这一列（可用的列：${expected}）",
    "duplicate_column": "这一列出现了两次",
    # A row
    "extra_value": "没有表头的列里有内容：${value}",
    "too_many_fields": "这一行有${fields}个字段，表头只有${header}个",
    "required": "必填",
    "too_long": "太长：${length}个字符，最多${cap}个",
    "invisible": "含有控制字符或不可见字符${char}（第${position}个字符），请删去",
    "formula": "不能以“${first}”开头（表格软件会把它当作公式执行）",
    "code": "代码只能由字母、数字和“-”组成，以字母或数字开头，最多${cap}个字符",
    "key_safe": "钥匙盒密码只能由字母、数字和“-”组成，以字母或数字开头，最多${cap}个字符",
    "phone_characters": "不是电话号码：只能有数字、开头的“+”和空格、“-”、括号",
    "phone_international": "不是有效的国际号码（+国家代码和号码，最多15位）",
    "phone_mobile": "不是有效的手机号码（11位，以13至19开头，如139-0000-0020）",
    "phone_landline": "不是有效的座机号码（区号加7或8位号码，如0558-1234567）",
    "phone_area": "座机号码缺少区号（如0558-1234567）",
    "time": "不是时间：请写成24小时制，如8:00、08:00、8点、8点半、20:30",
    "time_24_start": "24:00是一天的结束，不能作为开始时间",
    "never_available": "值守开始和结束都是${time}，这个人永远不会被联系",
    "flag": "请填 是/否 或 1/0，不是“${value}”",
    "notify": (
        "通知事项只能是呼叫、接单、到达、办结、早安，或“不通知”（英文${choices}），不是“${value}”"
    ),
    "notify_none": "“不通知”不能和其他通知事项一起写",
    "first_use_family": "“早安”（每天第一次用水的短信）只能发给家属",
    "level": "层级只能是县（区）、乡镇、村、片、组、邻（或英文${choices}），不是“${value}”",
    "role": (
        "角色只能是书记、副书记、网格员、邻长、组长、片长、镇值班、家属（或英文${choices}），"
        "不是“${value}”"
    ),
    "language": "语言只能是中文或英文（${choices}），不是“${value}”",
    "family_household": "家属要填户号，不填单位代码",
    "role_unit": "${role}要填单位代码，不填户号",
    "duplicate_key": "${what}已在第${first}行",
    "device_id_required": "填了呼叫盒密钥，也要填呼叫盒编号",
    "device_id_hex": "呼叫盒编号应为16位十六进制数字",
    "device_key_required": "填了呼叫盒编号，也要填呼叫盒密钥（${digits}位十六进制数字）",
    "device_key_hex": "呼叫盒密钥应为${digits}位十六进制数字",
    "unknown_unit": "系统中没有单位${unit}：请先导入单位",
    "not_neighbourhood": "${unit}是${level}，不是邻",
    "unknown_household": "系统中没有户${household}：请先导入住户",
    "box_other": "户${household}已有呼叫盒${other}；换呼叫盒要通过设备管理，不能通过导入",
    "box_kind": "${device}已登记为${kind}",
    "box_owner": "呼叫盒${device}已登记在户${owner}；移动呼叫盒要通过设备管理，不能通过导入",
    "box_no_owner": "呼叫盒${device}已登记但未分配到户；分配要通过设备管理，不能通过导入",
    "box_key": "与${device}已登记的密钥不同；更换密钥要通过设备管理，不能通过导入",
    "unit_level": "${code}在系统中是${level}；导入不能改变层级",
    "unit_parent": "${code}在系统中属于${parent}；导入不能移动单位",
    "county_parent": "县（区）没有上级",
    "parent_required": "必填：这个${level}所属的${above}",
    "parent_rejected": "它的上级${parent}（第${line}行）有错误",
    "parent_unknown": "上级${parent}既不在系统中，也不在这个文件中",
    "parent_level": "${level}的上级应是${above}，不是${parent_level}",
}

# Lines of the report.
AT_LINE = "${file} 第${line}行，${column}：${message}"
AT_FILE = "${file} 第${line}行：${message}"
COLUMN = "${header}（${column}）"
MORE = "${file}：另有${count}处错误未列出"
REFUSED = "${file}：文件被拒绝，什么也没有导入"
ROWS_REFUSED = (
    "${file}：文件被拒绝，什么也没有导入：${rows}行${kind}中有${rejected}行有错误；"
    "请改正后重新导入整个文件"
)
CHECKED_REFUSED = (
    "${file}：已检查，未写入：${rows}行${kind}中有${rejected}行有错误，导入时整个文件会被拒绝"
)
SUMMARY = (
    "${file}：${done}：${rows}行${kind}：新增${inserted}，更新${updated}，"
    "未变${unchanged}，拒绝${rejected}${boxes}"
)
DONE = "已导入"
CHECKED = "已检查，未写入"
BOXES = "；新呼叫盒${devices}个"
