// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros over the
// addresses of global structs, which Swift cannot import. These functions return them.
#pragma once
#include <mpi.h>

static inline MPI_Comm samtrain_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm samtrain_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype samtrain_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype samtrain_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype samtrain_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype samtrain_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype samtrain_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype samtrain_char(void) { return MPI_CHAR; }
static inline MPI_Op samtrain_op_sum(void) { return MPI_SUM; }
static inline MPI_Op samtrain_op_max(void) { return MPI_MAX; }
static inline MPI_Op samtrain_op_min(void) { return MPI_MIN; }
static inline void *samtrain_in_place(void) { return MPI_IN_PLACE; }
static inline int samtrain_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }

// Non-blocking in-place float sum, and completion of a set of requests (the bucketed
// gradient allreduce). MPI_STATUSES_IGNORE is a macro too.
static inline int samtrain_iallreduce_sum_float(float *data, int count, MPI_Comm comm, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, comm, request);
}
static inline int samtrain_testall(int count, MPI_Request *requests, int *done) {
    return MPI_Testall(count, requests, done, MPI_STATUSES_IGNORE);
}
static inline int samtrain_waitall(int count, MPI_Request *requests) {
    return MPI_Waitall(count, requests, MPI_STATUSES_IGNORE);
}
static inline MPI_Request samtrain_request_null(void) { return MPI_REQUEST_NULL; }
