"""A scripted agent: drives `vibesync serve --fake-core` over stdio with the
official Python MCP SDK and prints what it observed as one JSON object on
the last line of stdout. The Rust tests (tests/mcp_e2e.rs) make the
assertions; this script only records.

    agent.py VIBESYNC_BIN STATE_DIR SCENARIO [extra serve args...]
"""
import asyncio
import json
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def record(result):
    return {
        "is_error": bool(result.isError),
        "text": text_of(result),
        "structured": result.structuredContent,
    }


def ctl(binary, state_dir, *args):
    p = subprocess.run([binary, "ctl", "--state-dir", state_dir, *args], capture_output=True, text=True, timeout=30)
    return {"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


async def main_scenario(session, binary, state_dir, out):
    tools = await session.list_tools()
    out["tools"] = [
        {
            "name": t.name,
            "input_schema": t.inputSchema,
            "output_schema": t.outputSchema,
            "annotations": t.annotations.model_dump(exclude_none=True) if t.annotations else None,
        }
        for t in tools.tools
    ]
    scene = await session.call_tool("read_scene", {})
    version = scene.structuredContent["version"]
    out["read_scene"] = record(scene)

    out["no_rationale"] = record(await session.call_tool(
        "create_object", {"name": "Lamp", "kind": "light", "primitive": "point", "scene_version": version}))
    out["no_scene_version"] = record(await session.call_tool(
        "create_object", {"name": "Lamp", "kind": "light", "rationale": "light the table for the render"}))
    out["stale"] = record(await session.call_tool(
        "create_object", {"name": "Lamp", "kind": "light", "rationale": "light the table for the render", "scene_version": version + 7}))

    created = await session.call_tool(
        "create_object", {"name": "Lamp", "kind": "light", "primitive": "point",
                          "rationale": "light the table for the render", "scene_version": version})
    out["create"] = record(created)
    version = created.structuredContent["scene_version"]
    obj = (await session.call_tool("read_scene", {})).structuredContent["objects"][0]["id"]

    progress = []

    async def on_progress(p, total, message):
        progress.append({"progress": p, "total": total, "message": message})

    moved = await session.call_tool(
        "set_transform", {"id": obj, "translation": [0, 2.5, 0], "rationale": "raise the lamp above the table",
                          "scene_version": version}, progress_callback=on_progress)
    out["move_with_progress"] = record(moved)
    out["progress"] = progress
    version = moved.structuredContent["scene_version"]

    out["denied_script"] = record(await session.call_tool(
        "run_script", {"language": "python", "code": "import socket\nsocket.create_connection(('example.org', 80))",
                       "rationale": "fetch a texture from the web", "scene_version": version}))
    out["zero_scale"] = record(await session.call_tool(
        "submit_intent", {"ops": [{"op": "set_transform", "args": {"id": obj, "scale": [1, 0, 1]}}],
                          "rationale": "flatten the lamp for a test", "scene_version": version}))
    out["validate"] = record(await session.call_tool(
        "validate_intent", {"ops": [{"op": "rename_object", "args": {"id": obj, "name": "KeyLight"}}],
                            "rationale": "clearer name for the key light", "scene_version": version}))

    escalated = await session.call_tool(
        "delete_object", {"id": obj, "rationale": "the lamp is no longer needed", "scene_version": version})
    out["escalated"] = record(escalated)
    tid = int(escalated.content[0].text.split("(tid ")[1].split(")")[0])
    out["escalated_tid"] = tid
    out["ctl_approve"] = ctl(binary, state_dir, "approve", str(tid))
    await asyncio.sleep(1.0)
    out["after_approve"] = record(await session.call_tool("get_transaction", {"tid": tid}))
    out["journal"] = record(await session.call_tool("get_operation_journal", {"tid": tid}))
    out["verify"] = record(await session.call_tool("verify_engine_state", {}))


async def panic_scenario(session, binary, state_dir, out):
    tools = await session.list_tools()
    out["tool_names"] = [t.name for t in tools.tools]
    version = (await session.call_tool("read_scene", {})).structuredContent["version"]
    args = {"name": "Cube", "kind": "mesh", "primitive": "cube",
            "rationale": "add a cube to block out the set", "scene_version": version}
    out["during_panic"] = record(await session.call_tool("create_object", args))
    out["engines_during_panic"] = record(await session.call_tool("list_engines", {}))
    # An agent trying operator actions finds no tool for them.
    try:
        out["agent_resume"] = record(await session.call_tool("resume", {}))
    except Exception as e:  # the SDK raises on a protocol-level error
        out["agent_resume"] = {"exception": str(e)}
    out["ctl_status"] = ctl(binary, state_dir, "status")
    out["ctl_resume"] = ctl(binary, state_dir, "resume")
    out["after_resume"] = record(await session.call_tool("create_object", args))


async def run():
    binary, state_dir, scenario, *extra = sys.argv[1:]
    params = StdioServerParameters(
        command=binary,
        args=["serve", "--fake-core", "--state-dir", state_dir, *extra],
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server_name"] = init.serverInfo.name
            out["instructions"] = init.instructions
            if scenario == "main":
                await main_scenario(session, binary, state_dir, out)
            elif scenario == "panic":
                await panic_scenario(session, binary, state_dir, out)
            else:
                raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out))


asyncio.run(run())
