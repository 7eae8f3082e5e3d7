"""A small village grid, as the CSV files an administrator would import."""

from __future__ import annotations

BOX_ID = "b1da000000000001"
BOX_KEY = bytes(range(16))
HOUSEHOLD = "341504-101-001-0001"

UNITS_CSV = """code,level,name,parent_code
341504,county,叶集区,
341504-101,township,三元镇,341504
341504-101-001,village,桥元村,341504-101
341504-101-001-1,area,一片,341504-101-001
341504-101-001-1-3,group,三组,341504-101-001-1
341504-101-001-1-3-1,neighbourhood,一邻,341504-101-001-1-3
"""

HOUSEHOLDS_CSV = f"""household_code,neighbourhood_code,address,resident_name,resident_phone,lives_alone,five_guarantee,needs_care,consent,key_safe_code,health_notes,device_id,device_key
{HOUSEHOLD},341504-101-001-1-3-1,桥元村三组12号,张桂兰,13912345678,是,否,1,1,4321,高血压,{BOX_ID},{BOX_KEY.hex()}
341504-101-001-0002,341504-101-001-1-3-1,桥元村三组14号,李德福,,1,0,0,0,,,,
"""

SECRETARY, DEPUTY, GRID_WORKER, CHIEF, GROUP_LEADER, AREA_CHIEF, TOWNSHIP, DAUGHTER = range(1, 9)

CONTACTS_CSV = f"""name,role,unit_code,household_code,phone,language,available_from,available_to
李书记,village_secretary,341504-101-001,,13800000001,zh-CN,,
王副书记,deputy_secretary,341504-101-001,,13800000002,zh-CN,,
赵网格员,grid_worker,341504-101-001-1,,13800000003,zh-CN,07:00,21:00
钱邻长,neighbour_chief,341504-101-001-1-3-1,,13800000004,zh-CN,,
孙组长,group_leader,341504-101-001-1-3,,13800000005,zh-CN,,
周片长,area_chief,341504-101-001-1,,13800000006,zh-CN,,
吴值班,township_duty,341504-101,,13800000007,zh-CN,,
张小红,family,,{HOUSEHOLD},+447700900123,en,,
"""

NEIGHBOURHOOD = "341504-101-001-1-3-1"
HOUSEHOLDS_HEADER = HOUSEHOLDS_CSV.splitlines()[0]


def household_box(i: int) -> tuple[str, bytes]:
    """The call box (device id, key) of the i-th generated household."""
    return f"{0xB1DA200000000000 + i:016x}", (i + 1).to_bytes(16, "big")


def households_csv(count: int, first: int = 0) -> str:
    """`count` good household rows in the test neighbourhood, each with its own call box."""
    lines = [HOUSEHOLDS_HEADER]
    for i in range(first, first + count):
        device_id, key = household_box(i)
        lines.append(
            f"G{i:06d},{NEIGHBOURHOOD},桥元村{i}号,居民{i},139{i:08d},1,0,0,1,,,"
            f"{device_id},{key.hex()}"
        )
    return "\n".join(lines) + "\n"
