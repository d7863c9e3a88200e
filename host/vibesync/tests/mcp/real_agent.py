"""A scripted agent against the REAL core: starts `vibesync serve --config
CONFIG` over stdio with the official Python MCP SDK, then two reference
engines (real processes, real QUIC) once the host listens, drives them, and
prints what it observed as one JSON object on the last line of stdout. The
Rust tests (tests/mcp_real.rs) make the assertions; this script only
records. Engine faults are switched on through the engines' stdin control
lines (`wrong-hash on`, `hang <ms>`), as the demo does.

    real_agent.py VIBESYNC_BIN CONFIG STATE_DIR SCENARIO
"""
import asyncio
import json
import os
import subprocess
import sys
import time

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


class Engine:
    """A reference engine child; `control` writes one line to its stdin."""

    def __init__(self, binary, state_dir, name, convention):
        self.proc = subprocess.Popen(
            [binary, "reference-engine", "--pairing", os.path.join(state_dir, "pairing", name + ".json"),
             "--convention", convention],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def control(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def control_applied(self, line):
        """`control`, then wait until the engine has acted on it: control lines
        are handled in order, so the answer to a `status` after it proves it
        (otherwise an intent submitted right away can reach the engine first)."""
        self.control(line)
        self.control("status")
        self.wait_line("STATUS")

    def wait_line(self, prefix, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line.strip()
        raise SystemExit(f"engine never printed {prefix}")

    def stop(self):
        try:
            self.control("quit")
            self.proc.wait(timeout=3)
        except Exception:
            self.proc.kill()


async def until(what, limit, probe):
    deadline = time.monotonic() + limit
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def engines_connected(session):
    async def probe():
        r = await session.call_tool("list_engines", {})
        engines = r.structuredContent["engines"]
        return len(engines) == 2 and all(e["connected"] for e in engines)
    await until("both engines connected", 30, probe)


async def version_of(session):
    return (await session.call_tool("read_scene", {})).structuredContent["version"]


async def final(session, tid):
    async def probe():
        r = await session.call_tool("get_transaction", {"tid": tid})
        return r.structuredContent if r.structuredContent["is_final"] else None
    return await until(f"tid {tid} final", 20, probe)


async def main_scenario(session, engines, out):
    blender, unity = engines
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
    await engines_connected(session)
    version = await version_of(session)
    out["version0"] = version

    out["no_rationale"] = record(await session.call_tool(
        "submit_intent", {"ops": [{"op": "create_object", "args": {"id": "cube", "name": "Cube", "kind": "mesh"}}],
                          "scene_version": version}))

    created = await session.call_tool("submit_intent", {
        "ops": [
            {"op": "create_object", "args": {"id": "cube", "name": "Cube", "kind": "mesh", "primitive": "cube"}},
            {"op": "set_transform", "args": {"id": "cube", "translation": [1.0, 0.5, -2.0]}},
        ],
        "rationale": "add a cube to the table for the blocking pass",
        "scene_version": version,
    })
    out["create"] = record(created)
    out["create_final"] = await final(session, created.structuredContent["tid"])
    out["verify_after_create"] = record(await session.call_tool("verify_engine_state", {}))

    # `version` is now one behind: the write is refused as stale.
    out["stale"] = record(await session.call_tool(
        "set_transform", {"id": "cube", "translation": [2.0, 0.5, -2.0], "rationale": "move the cube right a bit",
                          "scene_version": version}))

    # A lying engine: unity reports a wrong hash; the change is rolled back
    # on both engines.
    version = await version_of(session)
    before = (await session.call_tool("read_scene", {})).structuredContent
    unity.control_applied("wrong-hash on")
    lied = await session.call_tool(
        "set_transform", {"id": "cube", "translation": [3.0, 0.5, -2.0], "rationale": "slide the cube to the end of the table",
                          "scene_version": version})
    out["lie"] = record(lied)
    out["lie_final"] = await final(session, lied.structuredContent["tid"])
    unity.control_applied("wrong-hash off")
    out["scene_before_lie"] = before
    out["scene_after_lie"] = (await session.call_tool("read_scene", {})).structuredContent
    # Undo runs after the author's answer: wait until both engines read back
    # the canonical (pre-change) state.
    async def both_match():
        r = await session.call_tool("verify_engine_state", {})
        return r if r.structuredContent["all_match"] else None
    try:
        out["verify_after_lie"] = record(await until("both engines back to canonical", 10, both_match))
    except SystemExit:
        out["verify_after_lie"] = record(await session.call_tool("verify_engine_state", {}))


async def panic_scenario(session, engines, out):
    blender, unity = engines
    await engines_connected(session)
    version = await version_of(session)
    blender.control("hang 8000")
    blender.wait_line("HANG")
    args = {"ops": [{"op": "create_object", "args": {"id": "lamp", "name": "Lamp", "kind": "light"}}],
            "rationale": "light the table for the render", "scene_version": version}
    out["during_hang"] = record(await session.call_tool("submit_intent", args))

    async def in_panic():
        r = await session.call_tool("read_scene", {})
        return r.structuredContent if r.structuredContent.get("panic") else None
    out["scene_in_panic"] = await until("PANIC", 15, in_panic)
    args["scene_version"] = out["scene_in_panic"]["version"]
    out["in_panic"] = record(await session.call_tool("submit_intent", args))


async def run():
    binary, config, state_dir, scenario = sys.argv[1:]
    params = StdioServerParameters(command=binary, args=["serve", "--config", config])
    out = {}
    engines = []
    try:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server_name"] = init.serverInfo.name
                # The QUIC link is up before MCP is served.
                engines = [Engine(binary, state_dir, "blender", "blender"),
                           Engine(binary, state_dir, "unity", "unity")]
                if scenario == "main":
                    await main_scenario(session, engines, out)
                elif scenario == "panic":
                    await panic_scenario(session, engines, out)
                else:
                    raise SystemExit(f"unknown scenario {scenario}")
    finally:
        for e in engines:
            e.stop()
    print(json.dumps(out))


asyncio.run(run())
