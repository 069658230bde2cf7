from typing import Any

def configure(
    record_type: type[Any],
    field_names: tuple[str, ...],
    directions: dict[int, Any],
    frame_types: dict[int, Any],
    flags: dict[int, Any],
    /,
) -> None: ...
def frame_from_row(row: object, /) -> Any: ...
