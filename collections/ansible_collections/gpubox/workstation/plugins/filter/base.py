"""Filters for the base role: the extra CA certificates as files for gpubox.workstation.config_files."""

from __future__ import annotations


def base_ca_files(pems: dict[str, str], ca_dir: str, installed: list[str]) -> list[dict]:
    """One file per listed certificate (`<ca_dir>/<name>.crt`, the PEM with one final newline),
    then the removal of every `.crt` gpubox installed there earlier that is no longer listed.

    `installed` is what the probe found in `ca_dir`; `pems` is `base_ca_pems` (name -> PEM text).
    """
    wanted = [{"path": f"{ca_dir}/{name}.crt", "content": pem.strip() + "\n"} for name, pem in pems.items()]
    wanted_paths = {file["path"] for file in wanted}
    return wanted + [{"path": path, "state": "absent"} for path in installed if path not in wanted_paths]


class FilterModule:
    def filters(self):
        return {"base_ca_files": base_ca_files}
