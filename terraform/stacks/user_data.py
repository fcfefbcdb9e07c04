"""The host's first-boot script, rendered into the instance's user data (no cdktn import)."""

from __future__ import annotations

from pathlib import Path

USER_DATA_TEMPLATE = Path(__file__).resolve().parents[1] / "user-data.sh"


def render_user_data(template: str, values: dict[str, str]) -> str:
    """Fill `@@NAME@@` placeholders; the script's own `${...}` is escaped for Terraform first."""
    rendered = template.replace("${", "$${").replace("%{", "%%{")
    for name, value in values.items():
        placeholder = f"@@{name}@@"
        if placeholder not in rendered:
            raise ValueError(f"user data template has no {placeholder}")
        rendered = rendered.replace(placeholder, value)
    if "@@" in rendered:
        raise ValueError("user data template has a placeholder without a value")
    return rendered
