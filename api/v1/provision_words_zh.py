"""Simplified Chinese: what installers read about registration, install checks and labels."""

from typing import Final

ROW: Final[dict[str, str]] = {
    "bad_header": "第{line}行：表头须有 serial（或 device_id）和 key 两列。",
    "too_many_rows": "第{line}行：一批最多登记 {max} 台设备，请分成几批导入。",
    "empty": "文件里没有设备。",
    "bad_serial": "第{line}行：序列号“{serial}”不是16位十六进制数。",
    "bad_key": "第{line}行（{serial}）：密钥须为32位十六进制数（16字节）。",
    "bad_kind": "第{line}行（{serial}）：设备类型须为 call_box 或 water_meter。",
    "bad_label": "第{line}行（{serial}）：备注太长（最多64个字）。",
    "duplicate_serial": "第{line}行：序列号 {serial} 与第{other}行重复。",
    "already_registered": "第{line}行：设备 {serial} 已经登记过了。",
}
"""Why one row of a manufacturer's CSV was refused."""

BATCH_REFUSED: Final = "整批未导入：有{count}行有误，改正后请重新导入整个文件。"

KEYS: Final[dict[str, str]] = {
    "green": "绿键（呼叫）",
    "red": "红键（挂断）",
    "thumbs_up": "点赞键",
    "thumbs_down": "点踩键",
    "reading": "水表读数",
}

CHECK: Final[dict[str, str]] = {
    "running_box": "请在呼叫盒上依次按下四个键。还差：{missing}。",
    "running_meter": "请打开水龙头放水，等水表报上更大的读数。",
    "passed": "检测通过：设备已启用。",
    "missing_keys": "检测未通过：没有收到{missing}。设备仍为待启用，请检查按键后重新检测。",
    "no_reading": "检测未通过：没有收到水表读数。设备仍为待启用。",
    "volume_not_rising": "检测未通过：水表读数没有增加。设备仍为待启用。",
    "cancelled": "检测已取消。",
    "restarted": "已重新开始检测。",
    "removed": "设备已停用。",
}

STATE: Final[dict[str, str]] = {
    "active": "已启用",
    "checking": "检测中",
    "pending": "待启用",
    "never_checked": "尚未检测",
}

LABEL_TITLE: Final = "必到 呼叫设备"
KIND: Final[dict[str, str]] = {"call_box": "呼叫盒", "water_meter": "水表"}
SEPARATOR: Final = "、"

CLI: Final[dict[str, str]] = {
    "started": "第{check}号检测已开始：请在{minutes}分钟内依次按下设备 {device} 的四个键。",
    "started_meter": "第{check}号检测已开始：请在{minutes}分钟内打开水龙头放水（水表 {device}）。",
    "received": "收到：{key}",
    "reading": "收到水表读数：{litres} 升",
    "no_gateway": "检测时间已到，但网关没有结束检测：请确认 bidao run 正在运行。还差：{missing}。",
}
