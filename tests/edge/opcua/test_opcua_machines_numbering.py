"""How a server's enumeration is matched to a standard model (pure): the server's numbers
win, OPC 40502's ``_<number>`` suffixes are matched either way, and what the model does not
know is reported rather than dropped silently."""

from __future__ import annotations

from common.state_models import BY_NAME
from edge.sources.opcua.machines import match_numbering


def test_the_servers_numbers_are_taken_for_the_models_names() -> None:
    numbering, foreign = match_numbering(
        BY_NAME["PackMLUnitMode"],
        [("Production", 1), ("Maintenance", 2), ("Manual", 3), ("Clean", 17)],
    )
    assert numbering == (("Production", 1), ("Maintenance", 2), ("Manual", 3))
    assert foreign == ["Clean=17"]


def test_number_suffixes_match_either_way() -> None:
    cnc = BY_NAME["CncOperationMode"]  # Manual_0, MDA_1, Automatic_2
    assert match_numbering(cnc, [("Manual", 0), ("MDA", 1), ("Automatic", 2)]) == (
        (("Manual_0", 0), ("MDA_1", 1), ("Automatic_2", 2)),
        [],
    )
    channel = BY_NAME["ChannelState"]  # Active, Interrupted, Reset
    assert match_numbering(channel, [("Active_0", 0), ("Interrupted_1", 1), ("Reset_2", 2)])[0] == (
        ("Active", 0),
        ("Interrupted", 1),
        ("Reset", 2),
    )


def test_a_name_given_twice_by_the_server_is_reported_not_overwritten() -> None:
    numbering, foreign = match_numbering(
        BY_NAME["MachineOperationMode"], [("Manual", 0), ("MANUAL", 7), ("Automatic", 1)]
    )
    assert numbering == (("Manual", 0), ("Automatic", 1))
    assert foreign == ["MANUAL=7"]
