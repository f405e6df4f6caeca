"""`async with` support for everything in CodeTool that starts and stops."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncLifecycle:
    """Gives a class with `start()` and `aclose()` coroutines the `async with` protocol."""

    async def start(self) -> None:
        """Acquire what the object needs. Default: nothing."""

    async def aclose(self) -> None:
        """Release what the object holds, also after a failed `start`. Default: nothing."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()  # release whatever a failed start acquired (processes, sockets)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
