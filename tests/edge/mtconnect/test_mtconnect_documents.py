"""MTConnect documents as agents of versions 1.3 and 2.x write them → data items, observations
and errors; what does not parse is named."""

from __future__ import annotations

import pytest

from common.quality import BAD_NO_COMMUNICATION, GOOD
from edge.sources.mtconnect.documents import (
    MAX_DOCUMENT_BYTES,
    AgentError,
    Devices,
    DocumentError,
    Streams,
    parse,
    timestamp_ns,
)

T0 = "2024-03-13T06:59:54.563287Z"
T0_NS = 1710313194563287000

PROBE_1_3 = b"""<?xml version="1.0" encoding="UTF-8"?>
<MTConnectDevices xmlns:m="urn:mtconnect.org:MTConnectDevices:1.3"
    xmlns="urn:mtconnect.org:MTConnectDevices:1.3"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header creationTime="2024-03-13T06:59:54Z" sender="agent" instanceId="1268463594"
      bufferSize="131072" version="1.3.0" assetBufferSize="1024" assetCount="0"/>
  <Devices>
    <Device id="d" name="VMC-3Axis" uuid="000">
      <DataItems><DataItem category="EVENT" id="avail" type="AVAILABILITY"/></DataItems>
      <Components>
        <Axes id="a" name="base"><Components><Linear id="x" name="X"><DataItems>
          <DataItem category="SAMPLE" id="Xact" name="Xact" subType="ACTUAL" type="POSITION"
              units="MILLIMETER"/>
        </DataItems></Linear></Components></Axes>
        <Controller id="cont" name="controller"><Components><Path id="path" name="path">
          <DataItems>
            <DataItem category="EVENT" id="execution" name="execution" type="EXECUTION"/>
            <DataItem category="EVENT" id="mode" name="mode" type="CONTROLLER_MODE"/>
            <DataItem category="CONDITION" id="path_system" type="SYSTEM"/>
          </DataItems>
        </Path></Components></Controller>
      </Components>
    </Device>
  </Devices>
</MTConnectDevices>"""

STREAMS_2_0 = f"""<?xml version="1.0" encoding="UTF-8"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0">
  <Header creationTime="{T0}" sender="agent" instanceId="1710313194" version="2.0.0"
      bufferSize="16" nextSequence="120" firstSequence="105" lastSequence="119"/>
  <Streams>
    <DeviceStream name="VMC-3Axis" uuid="000">
      <ComponentStream component="Path" name="path" componentId="path">
        <Events>
          <Execution dataItemId="execution" timestamp="{T0}" sequence="110">ACTIVE</Execution>
          <ControllerMode dataItemId="mode" timestamp="{T0}" sequence="108">MANUAL_DATA_INPUT</ControllerMode>
          <PartCount dataItemId="parts" timestamp="{T0}" sequence="111">UNAVAILABLE</PartCount>
          <VariableDataSet dataItemId="vars" timestamp="{T0}" sequence="118">
            <Entry key="a">1</Entry><Entry key="b">two</Entry>
          </VariableDataSet>
        </Events>
        <Condition>
          <Fault dataItemId="path_system" timestamp="{T0}" sequence="112" type="SYSTEM"
              nativeCode="E1">Spindle overload</Fault>
          <Unavailable dataItemId="path_motion" timestamp="{T0}" sequence="113" type="MOTION"/>
          <Normal dataItemId="path_comms" timestamp="{T0}" sequence="114" type="COMMUNICATIONS"/>
        </Condition>
      </ComponentStream>
      <ComponentStream component="Linear" name="X" componentId="x">
        <Samples>
          <Position dataItemId="Xact" timestamp="{T0}" sequence="107">-12.5000</Position>
          <PathPosition dataItemId="pos" timestamp="{T0}" sequence="109">1 2 3</PathPosition>
          <Load dataItemId="Xload" timestamp="2024-03-13T06:59:55Z" sequence="115">UNAVAILABLE</Load>
        </Samples>
      </ComponentStream>
      <ComponentStream component="Device" name="VMC-3Axis" componentId="d">
        <Events><Availability dataItemId="avail" timestamp="{T0}" sequence="106">AVAILABLE</Availability></Events>
      </ComponentStream>
    </DeviceStream>
  </Streams>
</MTConnectStreams>""".encode()


def test_a_probe_lists_every_data_item_with_its_device() -> None:
    document = parse(PROBE_1_3)
    assert isinstance(document, Devices)
    assert document.header.instance_id == "1268463594" and document.header.buffer_size == 131072
    assert sorted(document.items) == ["Xact", "avail", "execution", "mode", "path_system"]
    xact = document.items["Xact"]
    assert (xact.device, xact.device_uuid, xact.category, xact.type) == (
        "VMC-3Axis",
        "000",
        "SAMPLE",
        "POSITION",
    )
    assert xact.belongs_to("VMC-3Axis") and xact.belongs_to("000")
    assert not xact.belongs_to("Lathe")


def test_streams_give_every_kind_of_value_in_sequence_order() -> None:
    document = parse(STREAMS_2_0)
    assert isinstance(document, Streams)
    assert document.header == ("1710313194", 105, 119, 120, 16)
    unavailable = (None, BAD_NO_COMMUNICATION)
    assert document.observations == [
        (106, "avail", T0_NS, "AVAILABLE", GOOD),
        (107, "Xact", T0_NS, -12.5, GOOD),
        (108, "mode", T0_NS, "MANUAL_DATA_INPUT", GOOD),
        (109, "pos", T0_NS, "1 2 3", GOOD),  # a 3D sample: its text
        (110, "execution", T0_NS, "ACTIVE", GOOD),
        (111, "parts", T0_NS, *unavailable),  # an event: never a value
        (112, "path_system", T0_NS, "Fault", GOOD),
        (113, "path_motion", T0_NS, *unavailable),  # a condition
        (114, "path_comms", T0_NS, "Normal", GOOD),
        (115, "Xload", 1710313195000000000, *unavailable),  # a sample
        (118, "vars", T0_NS, "a=1 b=two", GOOD),
    ]


def test_only_the_wanted_data_items_are_kept() -> None:
    document = parse(STREAMS_2_0, {"execution", "Xact"})
    assert isinstance(document, Streams)
    assert [o[1] for o in document.observations] == ["Xact", "execution"]


@pytest.mark.parametrize(
    "errors",
    [
        # MTConnect 1.x to 2.4
        b"<Errors><Error errorCode=\"OUT_OF_RANGE\">'from' must be at least 105</Error></Errors>",
        # 2.5 and later
        b"<Errors><OutOfRange><ErrorCode>OUT_OF_RANGE</ErrorCode><URI>/sample</URI>"
        b"<ErrorMessage>'from' must be at least 105</ErrorMessage></OutOfRange></Errors>",
    ],
)
def test_an_error_document_gives_its_codes(errors: bytes) -> None:
    body = (
        b'<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3">'
        b'<Header creationTime="x" sender="a" instanceId="7" bufferSize="16" version="1.3"/>'
        + errors
        + b"</MTConnectError>"
    )
    document = parse(body)
    assert isinstance(document, AgentError)
    assert document.instance_id == "7"
    assert document.has("OUT_OF_RANGE") and not document.has("NO_DEVICE")
    assert str(document) == "OUT_OF_RANGE: 'from' must be at least 105"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b"<html><body>Not Found</body></html>",
            "not an MTConnect document: its root element is <html>",
        ),
        (b"<MTConnectStreams><Header", "not XML"),
        (b"<MTConnectStreams><Streams/></MTConnectStreams>", "<MTConnectStreams> has no Header"),
        (
            b'<MTConnectStreams><Header sender="a"/></MTConnectStreams>',
            "the Header has no instanceId",
        ),
        (
            b'<MTConnectStreams><Header instanceId="1" firstSequence="1" lastSequence="x" '
            b'nextSequence="2"/></MTConnectStreams>',
            "the Header's lastSequence is 'x', not a number",
        ),
        (
            STREAMS_2_0.replace(b'sequence="110"', b'sequence="ten"'),
            "data item execution: sequence 'ten' is not a number",
        ),
    ],
)
def test_what_is_not_a_document_is_named(body: bytes, reason: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse(body)
    assert reason in str(caught.value)


def test_a_document_over_the_limit_is_refused_unparsed() -> None:
    with pytest.raises(DocumentError, match="is over"):
        parse(b" " * (MAX_DOCUMENT_BYTES + 1))


def test_an_external_entity_is_not_fetched_or_expanded() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<MTConnectStreams><Header instanceId="1" firstSequence="1" lastSequence="1" '
        b'nextSequence="2"/><Streams><DeviceStream><ComponentStream><Events>'
        b'<Execution dataItemId="e" sequence="1" timestamp="2024-01-01T00:00:00Z">&x;</Execution>'
        b"</Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>"
    )
    with pytest.raises(DocumentError, match="undefined entity"):
        parse(body)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        (T0, T0_NS),
        ("2024-03-13T06:59:54Z", 1710313194000000000),
        ("2024-03-13T06:59:54", 1710313194000000000),  # no zone: UTC, as the standard says
        ("2024-03-13T06:59:54.5Z", 1710313194500000000),
        ("2024-03-13T06:59:54.123456789Z", 1710313194123456789),
        ("2024-03-13T06:59:54.1234567891Z", 1710313194123456789),  # past ns: dropped
        ("2024-03-13T08:59:54.563287+02:00", T0_NS),
        ("2024-03-13T06:59:54.5 Z", None),
        ("2024-13-13T06:59:54Z", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_time_stamps_to_ns(text: str | None, ns: int | None) -> None:
    assert timestamp_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", 12.5), ("-3", -3.0), ("1e3", 1000.0), ("NaN", "NaN"), ("inf", "inf"), ("", "")],
)
def test_a_sample_is_a_finite_number_or_its_text(text: str, value: object) -> None:
    body = (
        '<MTConnectStreams><Header instanceId="1" firstSequence="1" lastSequence="1" '
        'nextSequence="2"/><Streams><DeviceStream><ComponentStream><Samples>'
        f'<Load dataItemId="l" sequence="1" timestamp="{T0}">{text}</Load>'
        "</Samples></ComponentStream></DeviceStream></Streams></MTConnectStreams>"
    )
    document = parse(body.encode())
    assert isinstance(document, Streams)
    assert document.observations == [(1, "l", T0_NS, value, GOOD)]
