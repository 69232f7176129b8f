// The local launcher of data-parallel runs (`clip train --nproc-per-node N`): starts the ranks as
// processes of this same command, as torchrun would, and waits for them. See docs/distributed.md.
#pragma once

#include <atomic>

namespace clip::train {

// `clip train --nproc-per-node N`: starts N workers running this same command line (the process's
// own /proc/self/cmdline) with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1
// and a free MASTER_PORT set, `--threads` and `--workers` divided between them (workers < 0: the
// command has no --workers flag). Waits for all; a rank that fails is named on stderr, and the
// others are terminated. Returns the first non-zero exit status (0 if all
// succeeded; 128 + signal for a worker killed by a signal). A set `stop_flag` (SIGINT/SIGTERM to the
// launcher) is passed on to the workers as SIGTERM, which stop together with a checkpoint.
int launch_local_workers(int nproc, int threads, int workers, const std::atomic<bool>* stop_flag);

}  // namespace clip::train
