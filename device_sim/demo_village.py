"""The village of `bidao demo`, as the CSV files an installer imports.

One township, one village with two areas, two groups and three neighbourhoods; a secretary,
a deputy, a grid worker for each area, a neighbour chief for each neighbourhood, a group
leader, an area chief, an installer and the township duty; three residents living alone,
each with a call box and a family member, and a household whose elder lives with his son.
The first two boxes are played by the demo; the third is left for the person to press.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_sim.village_seed import (
    CHIEF_PHONE,
    DAUGHTER_PHONE,
    DEPUTY_PHONE,
    GRID_WORKER_PHONE,
    HOUSEHOLDS_HEADER,
    RESIDENT_PHONE,
    SECRETARY_PHONE,
    TOWNSHIP_PHONE,
    Village,
    device_key,
)

VILLAGE_CODE = "341504-101-001"
PLACE = "叶集区三元镇桥元村"
"""The county, township and village, as a line introduces them."""
SECRETARY = "李书记"
DEPUTY = "王副书记"
GRID_WORKER_2_PHONE = "13800000008"
"""The grid worker of the second area (where the second resident lives)."""


@dataclass(frozen=True)
class Resident:
    """A resident living alone with a call box, and the family member told of her calls."""

    name: str
    household: str
    address: str
    phone: str
    box: str
    family: str
    family_phone: str

    @property
    def key(self) -> bytes:
        """The box's key."""
        return device_key(self.box)


ZHANG = Resident(
    "张桂兰",
    f"{VILLAGE_CODE}-0001",
    "桥元村三组12号",
    RESIDENT_PHONE,
    "b1dade0000000001",
    "张小红",
    DAUGHTER_PHONE,
)
LIU = Resident(
    "刘德福",
    f"{VILLAGE_CODE}-0002",
    "桥元村五组3号",
    "13912345679",
    "b1dade0000000002",
    "刘强",
    "13700000032",
)
CHEN = Resident(
    "陈秀英",
    f"{VILLAGE_CODE}-0003",
    "桥元村三组21号",
    "13912345680",
    "b1dade0000000003",
    "王芳",
    "13700000031",
)
RESIDENTS = (ZHANG, LIU, CHEN)
PLAYED = (ZHANG, LIU)
"""The residents whose boxes the demo plays; the last one's box is the person's to press."""

UNITS_CSV = f"""code,level,name,parent_code
341504,county,叶集区,
341504-101,township,三元镇,341504
{VILLAGE_CODE},village,桥元村,341504-101
{VILLAGE_CODE}-1,area,一片,{VILLAGE_CODE}
{VILLAGE_CODE}-1-3,group,三组,{VILLAGE_CODE}-1
{VILLAGE_CODE}-1-3-1,neighbourhood,一邻,{VILLAGE_CODE}-1-3
{VILLAGE_CODE}-1-3-2,neighbourhood,二邻,{VILLAGE_CODE}-1-3
{VILLAGE_CODE}-2,area,二片,{VILLAGE_CODE}
{VILLAGE_CODE}-2-5,group,五组,{VILLAGE_CODE}-2
{VILLAGE_CODE}-2-5-1,neighbourhood,一邻,{VILLAGE_CODE}-2-5
"""


def _household(r: Resident, neighbourhood: str, flags: str, private: str) -> str:
    return (
        f"{r.household},{VILLAGE_CODE}-{neighbourhood},{r.address},{r.name},{r.phone},{flags},"
        f"{private},{r.box},{r.key.hex()}\n"
    )


HOUSEHOLDS_CSV = (
    HOUSEHOLDS_HEADER
    + _household(ZHANG, "1-3-1", "是,否,是,是", "4321,高血压")
    + _household(LIU, "2-5-1", "是,是,否,是", ",")
    + _household(CHEN, "1-3-2", "是,否,是,是", ",糖尿病")
    + f"{VILLAGE_CODE}-0004,{VILLAGE_CODE}-2-5-1,桥元村五组8号,赵永福,,否,否,否,否,,,,\n"
)

CONTACTS_CSV = f"""name,role,unit_code,household_code,phone,language,available_from,available_to
{SECRETARY},village_secretary,{VILLAGE_CODE},,{SECRETARY_PHONE},zh-CN,,
{DEPUTY},deputy_secretary,{VILLAGE_CODE},,{DEPUTY_PHONE},zh-CN,,
赵网格员,grid_worker,{VILLAGE_CODE}-1,,{GRID_WORKER_PHONE},zh-CN,,
陈网格员,grid_worker,{VILLAGE_CODE}-2,,{GRID_WORKER_2_PHONE},zh-CN,,
钱邻长,neighbour_chief,{VILLAGE_CODE}-1-3-1,,{CHIEF_PHONE},zh-CN,,
郑邻长,neighbour_chief,{VILLAGE_CODE}-1-3-2,,13800000009,zh-CN,,
冯邻长,neighbour_chief,{VILLAGE_CODE}-2-5-1,,13800000010,zh-CN,,
孙组长,group_leader,{VILLAGE_CODE}-1-3,,13800000005,zh-CN,,
周片长,area_chief,{VILLAGE_CODE}-1,,13800000006,zh-CN,,
马师傅,installer,{VILLAGE_CODE},,13800000011,zh-CN,,
吴值班,township_duty,341504-101,,{TOWNSHIP_PHONE},zh-CN,,
{ZHANG.family},family,,{ZHANG.household},{ZHANG.family_phone},en,,
{LIU.family},family,,{LIU.household},{LIU.family_phone},zh-CN,,
{CHEN.family},family,,{CHEN.household},{CHEN.family_phone},zh-CN,,
"""

DEMO_VILLAGE = Village(UNITS_CSV, HOUSEHOLDS_CSV, CONTACTS_CSV, tuple(r.box for r in PLAYED))

LIU_CHAIN = (SECRETARY_PHONE, DEPUTY_PHONE, GRID_WORKER_2_PHONE, TOWNSHIP_PHONE)
"""Who the second resident's call goes to, in turn (the gateway's default chain, his area)."""


def counts() -> dict[str, int]:
    """How many of each thing the village has, for the line that introduces it."""
    levels = [line.split(",")[1] for line in UNITS_CSV.splitlines()[1:]]
    households = HOUSEHOLDS_CSV.splitlines()[1:]
    return {
        "areas": levels.count("area"),
        "groups": levels.count("group"),
        "neighbourhoods": levels.count("neighbourhood"),
        "households": len(households),
        "alone": sum(1 for row in households if row.split(",")[5] == "是"),
        "contacts": len(CONTACTS_CSV.splitlines()) - 1,
    }
