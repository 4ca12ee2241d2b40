"""Python multiprocessing: a Pool of three workers (tasks and results over pipes, its handler
threads in the parent) counting in a multiprocessing.Value (shared memory with its lock) and
bumping bytes of a shared_memory.SharedMemory block (POSIX shm) that each task opens by name.
Prints "round N" every 5 rounds and a RESULT line.
Usage: mp_pool.py [rounds]"""
import multiprocessing as mp
import sys
import time
from multiprocessing import shared_memory

counter = None


def init(c):
    global counter
    counter = c


def work(args):
    i, name, r = args
    shm = shared_memory.SharedMemory(name=name)
    shm.buf[i] = (shm.buf[i] + i + 1) % 256
    shm.close()
    with counter.get_lock():
        counter.value += 1
    time.sleep(0.005)
    return sum(k * k for k in range(i * 50 + r))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    shm = shared_memory.SharedMemory(create=True, size=64)
    c = mp.Value("q", 0)
    total = 0
    with mp.get_context("fork").Pool(3, initializer=init, initargs=(c,)) as pool:
        for r in range(rounds):
            res = pool.map(work, [(i, shm.name, r) for i in range(12)], chunksize=1)
            total = (total * 31 + sum(res)) % (1 << 61)
            if r % 5 == 0:
                print("round", r, flush=True)
    print("RESULT", total, c.value, bytes(shm.buf[:12]).hex(), flush=True)
    shm.close()
    shm.unlink()


if __name__ == "__main__":
    main()
