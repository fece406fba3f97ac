"""The service's clock: its alarms fire on the running loop, once, and can be called off.

Whether they fire on time is the benchmark's business (``python -m bench.run`` prints the
latency of answers held by the outbox); here only what they do is checked, waiting on events.
"""

from __future__ import annotations

import asyncio
import os
import sys
import unittest

from core.hub.loop_clock import LoopAlarm, RunningLoopClock
from core.hub.timers import Alarm

WAIT = 5.0  # far beyond any alarm set here: only a broken alarm waits this long


class AlarmCases:
    """The checks every alarm passes; a subclass names the alarm."""

    def make(self, callback: object) -> Alarm:
        raise NotImplementedError

    async def fired(self) -> None:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        done = asyncio.Event()

        def callback() -> None:
            times.append(loop.time())
            done.set()

        alarm = self.make(callback)
        when = loop.time() + 0.001
        alarm.set(when)
        await asyncio.wait_for(done.wait(), WAIT)
        assert len(times) == 1 and times[0] >= when, (times, when)
        alarm.close()

    async def called_off(self) -> None:
        loop = asyncio.get_running_loop()
        calls: list[str] = []
        done = asyncio.Event()
        first = self.make(lambda: calls.append("first"))
        second = self.make(lambda: (calls.append("second"), done.set()))
        first.set(loop.time() + 0.001)
        first.cancel()
        second.set(loop.time() + 0.002)  # later than the first would have fired
        await asyncio.wait_for(done.wait(), WAIT)
        assert calls == ["second"], calls
        first.close()
        second.close()

    async def set_again(self) -> None:
        loop = asyncio.get_running_loop()
        calls: list[float] = []
        done = asyncio.Event()
        alarm = self.make(lambda: (calls.append(loop.time()), done.set()))
        alarm.set(loop.time() + 0.001)
        later = loop.time() + 0.003
        alarm.set(later)  # replaces the first setting
        await asyncio.wait_for(done.wait(), WAIT)
        marker = asyncio.Event()
        watcher = self.make(marker.set)
        watcher.set(loop.time() + 0.002)
        await asyncio.wait_for(marker.wait(), WAIT)
        watcher.close()
        assert len(calls) == 1 and calls[0] >= later, (calls, later)
        # Set again after firing (and after a close), it fires again.
        alarm.close()
        done.clear()
        alarm.set(loop.time())
        await asyncio.wait_for(done.wait(), WAIT)
        assert len(calls) == 2, calls
        alarm.close()


class LoopAlarmTest(unittest.IsolatedAsyncioTestCase, AlarmCases):
    def make(self, callback: object) -> Alarm:
        return LoopAlarm(callback)  # type: ignore[arg-type]

    async def test_fires_once_at_or_after_its_time(self) -> None:
        await self.fired()

    async def test_a_cancelled_alarm_does_not_fire(self) -> None:
        await self.called_off()

    async def test_setting_it_again_replaces_the_earlier_time(self) -> None:
        await self.set_again()


@unittest.skipUnless(
    sys.platform == "linux" and sys.version_info >= (3, 13), "timerfd: Linux, Python 3.13+"
)
class TimerfdAlarmTest(unittest.IsolatedAsyncioTestCase, AlarmCases):
    def make(self, callback: object) -> Alarm:
        return RunningLoopClock().alarm(callback)  # type: ignore[arg-type]

    async def test_the_service_clock_uses_a_timerfd(self) -> None:
        alarm = self.make(lambda: None)
        self.assertEqual(type(alarm).__name__, "TimerfdAlarm")

    async def test_fires_once_at_or_after_its_time(self) -> None:
        await self.fired()

    async def test_a_cancelled_alarm_does_not_fire(self) -> None:
        await self.called_off()

    async def test_setting_it_again_replaces_the_earlier_time(self) -> None:
        await self.set_again()

    async def test_close_releases_the_descriptor(self) -> None:
        done = asyncio.Event()
        alarm = self.make(done.set)
        alarm.set(asyncio.get_running_loop().time())
        await asyncio.wait_for(done.wait(), WAIT)
        fd = alarm._fd  # type: ignore[attr-defined]
        os.fstat(fd)
        alarm.close()
        with self.assertRaises(OSError):
            os.fstat(fd)


if __name__ == "__main__":
    unittest.main()
