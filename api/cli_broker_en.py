"""English: what `bidao broker-credentials` says, after the Chinese."""

TEXT: dict[str, str] = {
    "written": (
        "wrote broker credentials for {devices} devices and the gateway to {password_file}"
        " and {acl_file} ({seconds:.1f} s)"
    ),
    "reloaded": "the broker (pid {pid}) re-reads them now",
    "no_reload": "the broker re-reads them on SIGHUP (compose: its watcher sends it)",
    "err_no_gateway_user": (
        "the gateway's broker user is not set: set BIDAO_MQTT__USERNAME and "
        "BIDAO_MQTT__PASSWORD (or mqtt.username and mqtt.password in the config file)"
    ),
    "err_write": "cannot write {path}: {reason}",
}
