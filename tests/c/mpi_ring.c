/* An MPI program for the MPI tests (built with Open MPI's and with MPICH's mpicc): every rank
 * passes a number around a ring and all ranks sum their state each step, slowly, so that a
 * checkpoint lands mid-run with messages between the ranks. Rank 0 prints each step's sum and,
 * at the end, one RESULT line that must equal an uninterrupted run's.
 * Usage: mpi_ring STEPS */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    unsigned long acc = rank + 1;
    for (int i = 0; i < steps; i++) {
        unsigned long in = 0, out = acc * 31 + i;
        MPI_Sendrecv(&out, 1, MPI_UNSIGNED_LONG, (rank + 1) % size, 0, &in, 1, MPI_UNSIGNED_LONG,
                     (rank + size - 1) % size, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        acc = acc ^ (in * 2654435761u);
        unsigned long sum = 0;
        MPI_Allreduce(&acc, &sum, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
        if (rank == 0) { printf("step %d sum %lu\n", i, sum); fflush(stdout); }
        usleep(200000);
    }
    unsigned long total = 0;
    MPI_Reduce(&acc, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("RESULT total=%lu size=%d\n", total, size);
    MPI_Finalize();
    return 0;
}
