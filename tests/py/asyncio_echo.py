"""An asyncio server and three clients in one process, over TCP on loopback: each client sends
numbered lines and checks the upper-cased echo, sleeping 10 ms between lines. The event loop
runs on epoll with asyncio's self-pipe socketpair, so a restart must bring back the listener,
the connections with their bytes in flight, the socketpair and the epoll interest list.
Usage: asyncio_echo.py LINES. Prints progress, then "RESULT <sum>"."""
import asyncio
import sys


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    writer.close()


async def client(port, k, lines):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    total = 0
    for i in range(lines):
        writer.write(f"c{k} {i}\n".encode())
        await writer.drain()
        echo = await reader.readline()
        if echo != f"C{k} {i}\n".encode():
            print(f"client {k}: line {i} came back as {echo!r}", flush=True)
            sys.exit(1)
        total += i * (k + 1)
        if i % 50 == 0:
            print(f"client {k} at {i}", flush=True)
        await asyncio.sleep(0.01)
    writer.close()
    return total


async def main(lines):
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    totals = await asyncio.gather(*(client(port, k, lines) for k in range(3)))
    server.close()
    print("RESULT", sum(totals), flush=True)


asyncio.run(main(int(sys.argv[1])))
