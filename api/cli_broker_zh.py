"""Chinese: what `bidao broker-credentials` says, before the English."""

TEXT: dict[str, str] = {
    "written": (
        "已为 {devices} 台设备和网关写入消息服务器账号：{password_file}、{acl_file}"
        "（用时 {seconds:.1f} 秒）"
    ),
    "reloaded": "消息服务器（进程 {pid}）正在重新读取",
    "no_reload": "消息服务器收到 SIGHUP 后重新读取（compose 中由其监视脚本发送）",
    "err_no_gateway_user": (
        "未设置网关的消息服务器账号：请设置 BIDAO_MQTT__USERNAME 和 BIDAO_MQTT__PASSWORD"
        "（或配置文件中的 mqtt.username、mqtt.password）"
    ),
    "err_write": "无法写入 {path}：{reason}",
}
