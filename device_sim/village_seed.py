"""The small village a scenario's own gateway starts with, as the CSV files an installer imports.

One township, one village with an area, a group and a neighbourhood; a secretary, a deputy,
a grid worker, a neighbour chief, a group leader, an area chief, the township duty; one
resident living alone (with her call box and water meter) and her daughter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device_sim.device import SimulatedDevice

BOX_ID = "b1da5c0000000001"
METER_ID = "b1da5c0000000002"
HOUSEHOLD = "341504-101-001-0001"
RESIDENT = "张桂兰"
RESIDENT_PHONE = "13912345678"
SECRETARY_PHONE = "13800000001"
DEPUTY_PHONE = "13800000002"
GRID_WORKER_PHONE = "13800000003"
CHIEF_PHONE = "13800000004"
TOWNSHIP_PHONE = "13800000007"
DAUGHTER_PHONE = "+447700900123"


def device_key(device_id: str) -> bytes:
    """A scenario device's key (derived from its id: the same in every run)."""
    return hashlib.sha256(b"bidao-scenario:" + device_id.encode()).digest()[:16]


UNITS_CSV = """code,level,name,parent_code
341504,county,叶集区,
341504-101,township,三元镇,341504
341504-101-001,village,桥元村,341504-101
341504-101-001-1,area,一片,341504-101-001
341504-101-001-1-3,group,三组,341504-101-001-1
341504-101-001-1-3-1,neighbourhood,一邻,341504-101-001-1-3
"""

HOUSEHOLDS_HEADER = (
    "household_code,neighbourhood_code,address,resident_name,resident_phone,lives_alone,"
    "five_guarantee,needs_care,consent,key_safe_code,health_notes,device_id,device_key\n"
)
HOUSEHOLDS_CSV = (
    HOUSEHOLDS_HEADER
    + f"{HOUSEHOLD},341504-101-001-1-3-1,桥元村三组12号,{RESIDENT},{RESIDENT_PHONE},是,否,1,1,"
    f"4321,高血压,{BOX_ID},{device_key(BOX_ID).hex()}\n"
)

CONTACTS_CSV = f"""name,role,unit_code,household_code,phone,language,available_from,available_to
李书记,village_secretary,341504-101-001,,{SECRETARY_PHONE},zh-CN,,
王副书记,deputy_secretary,341504-101-001,,{DEPUTY_PHONE},zh-CN,,
赵网格员,grid_worker,341504-101-001-1,,{GRID_WORKER_PHONE},zh-CN,,
钱邻长,neighbour_chief,341504-101-001-1-3-1,,{CHIEF_PHONE},zh-CN,,
孙组长,group_leader,341504-101-001-1-3,,13800000005,zh-CN,,
周片长,area_chief,341504-101-001-1,,13800000006,zh-CN,,
吴值班,township_duty,341504-101,,{TOWNSHIP_PHONE},zh-CN,,
张小红,family,,{HOUSEHOLD},{DAUGHTER_PHONE},en,,
"""


@dataclass(frozen=True)
class Village:
    """A village as the CSV files an installer imports, and the call boxes a stage plays."""

    units_csv: str
    households_csv: str
    contacts_csv: str
    boxes: tuple[str, ...]
    """Call boxes of the households file the stage simulates (each keyed `device_key(id)`);
    the first is the one a scenario presses."""


SCENARIO_VILLAGE = Village(UNITS_CSV, HOUSEHOLDS_CSV, CONTACTS_CSV, (BOX_ID,))


def crowd_id(index: int) -> str:
    """The id of the index-th extra device of a crowd (storm)."""
    return f"{0xB1DA5D0000000000 + index:016x}"


def crowd_households(boxes: list[SimulatedDevice]) -> str:
    """Household rows (no header) in the village's neighbourhood, one for each box."""
    return "".join(
        f"S{i:06d},341504-101-001-1-3-1,桥元村{100 + i}号,居民{i},,1,0,0,1,,,"
        f"{box.device_id},{box.key.hex()}\n"
        for i, box in enumerate(boxes)
    )


def visiting_box_id(now: float) -> str:
    """A box id of its own for one run against a running gateway (which keeps old boxes)."""
    return f"{0xB1DA5E0000000000 + (int(now * 1000) & 0xFFFFFFFFFF):016x}"


def visiting_household(box_id: str) -> str:
    """A households file (header and one row) for a run's own box in the village."""
    return (
        HOUSEHOLDS_HEADER
        + f"SIM-{box_id},341504-101-001-1-3-1,桥元村模拟{box_id[-4:]}号,{RESIDENT},,1,0,0,1,,,"
        f"{box_id},{device_key(box_id).hex()}\n"
    )
