"""Simplified Chinese: the API's error messages (a person reads them first)."""

from typing import Final

TEXT: Final[dict[str, str]] = {
    "not_signed_in": "尚未登录：请先登录（POST /api/v1/session），或在请求头中带上接口令牌。",
    "session_expired": "登录已过期：请重新登录。",
    "bad_token": "接口令牌无效、已撤销或已过期：请向管理员申请新令牌（bidao user token）。",
    "bad_credentials": "登录名或密码不对：请检查后重试。",
    "rate_limited": "登录失败次数过多：请 {retry_after_s} 秒后再试。",
    "disabled": "该用户已停用：请联系管理员。",
    "forbidden": "您的角色无权进行此操作。",
    "not_found": "找不到：{what} {key} 不存在，或不在您负责的范围内。",
    "no_contact": (
        "您的账号没有关联到应答联系人，不能处理工单：请管理员用 bidao user add --contact 关联。"
    ),
    "bad_input": "输入有误：{detail}",
    "ticket_conflict": "工单当前状态不允许此操作：{detail}。请刷新后再看。",
    "not_an_alarm": "这是呼叫工单，不是报警：不能标注报警结果。",
    "bad_outcome": "这种报警不能标注为该结果：{detail}",
    "not_running": "此操作需要正在运行的网关。",
    "water_refused": "用水看护请求未受理：{detail}",
    "device_refused": "设备操作未受理：{detail}",
    "no_metrics": "还没有运行指标。",
    "cross_site": "请求来自其他网站，已拒绝：请在本系统的页面上操作。",
    "internal": "服务器内部错误：已记录，请稍后重试或联系管理员。",
}
