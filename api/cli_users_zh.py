"""Simplified Chinese: what `bidao user ...` says to people."""

TEXT: dict[str, str] = {
    "added": "已添加用户 {login}（{name}，{role}）。",
    "added_no_password": (
        "还没有密码：用 bidao user passwd {login} 设置，"
        "或用 bidao user token {login} 发放接口令牌。"
    ),
    "password_set": "已为 {login} 设置新密码；此前的登录已全部失效。",
    "token_issued": (
        "已为 {login} 发放接口令牌“{name}”（编号 {id}）。令牌只显示这一次，请立即妥善保存："
    ),
    "token_expires": "有效期至 {at}。",
    "disabled": "已停用用户 {login}：其登录已失效，接口令牌不再有效。",
    "enabled": "已重新启用用户 {login}。",
    "none": "还没有用户。用 bidao user add 添加。",
    "header": "编号  登录名  姓名  角色  负责单位  联系人  状态",
    "state_on": "启用",
    "state_off": "已停用",
    "prompt": "新密码（至少 {min} 个字符）",
    "prompt_again": "再输入一次",
    "err_mismatch": "两次输入的密码不一致。",
    "err_no_password_stdin": "标准输入中没有密码。",
    "err_bad_login": "登录名 {login} 不可用：请用 2 到 64 个字母、数字或 . _ @ -。",
    "err_bad_name": "名称不可用（太长或为空）。",
    "err_login_taken": "登录名 {login} 已被使用。",
    "err_no_such_user": "没有用户 {login}。用 bidao user list 查看。",
    "err_bad_unit": "单位不合适：{detail}。用 bidao report 或单位表查看代码。",
    "err_bad_contact": "联系人不合适：{detail}。",
    "err_too_short": "密码太短：至少需要 {min} 个字符。",
    "err_too_long": "密码太长：最多 {max} 个字符。",
    "err_bad_input": "输入有误：{detail}。",
    "role_administrator": "管理员",
    "role_township_officer": "乡镇干部",
    "role_secretary": "村书记",
    "role_grid_worker": "网格员",
    "role_installer": "安装维护员",
    "role_family": "家属",
}
