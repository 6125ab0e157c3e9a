# rllua - build, test and install.
#
#   make deps            Debian packages the build, the specs and the table
#                        scripts need (apt-get; run as root or with sudo)
#   make                 ./rllua and lib/rl/core.so (the engine as a Lua module)
#   make test            every spec; the last line reads "N passed, N failed"
#   make test-cuda       spec/cuda_spec.lua (CPU vs CUDA); fails without a GPU
#   make test-cuda-emu   the same spec, and the experiment and script specs on
#                        the GPU path, on a host emulator of CUDA that runs
#                        kernels/ (build-emu/; no GPU needed)
#   make crosscheck-aa   AutoAttack vs torchattacks on 500 Fashion-MNIST images
#   make test-asan       every spec on an ASan+UBSan build (in build-asan/)
#   make fuzz            libFuzzer on every file reader, FUZZ_SECONDS each (30)
#   make bench           scripts/bench_core.lua, side by side with C/OpenBLAS
#   make install PREFIX=/usr/local
#   make CUDA=0          build without the CUDA backend even when nvcc exists

CC      ?= gcc
PREFIX  ?= /usr/local
LUA_INC ?= /usr/include/lua5.4
# The build machine is the machine that runs the experiments; override
# ARCH= for a portable binary.
ARCH    ?= -march=native

NVCC    ?= $(shell command -v nvcc 2>/dev/null || (test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc))
CUDA_SRCS := $(wildcard kernels/*.cu)
ifeq ($(NVCC),)
CUDA ?= 0
else
CUDA ?= 1
endif
ifeq ($(CUDA_SRCS),)
override CUDA := 0
endif

# OPT and CFLAGS/LDFLAGS may be given on the command line, e.g. a sanitiser
# build: make OPT='-O0 -g' CFLAGS=-fsanitize=address LDFLAGS=-fsanitize=address
OPT     ?= -O2
WARN    := -Wall -Wextra -Wno-unused-parameter
# OpenBLAS built on OpenMP shares the engine's thread pool; the pthread build
# would run its own threads beside OpenMP's, and on a 2-core machine the two
# pools preempt each other (a third of a training step went to sched_yield).
BLAS_OMP := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(BLAS_OMP)/libblas.so),)
BLAS_CFLAGS := -I/usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIBS   := -L$(BLAS_OMP) -Wl,-rpath,$(BLAS_OMP) -lblas
else
BLAS_CFLAGS := -DRL_HAVE_OPENBLAS_THREADS
BLAS_LIBS   := -lopenblas
endif
# oneDNN (Debian's libdnnl-dev, the library PyTorch's CPU convolutions run
# on) is one more candidate of the per-shape convolution choice; without it
# the engine's own algorithms remain.  DNNL=0 builds without it.
DNNL    ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
DNNL_CFLAGS := -DRL_HAVE_DNNL
DNNL_LIBS   := -ldnnl
endif
ALL_CFLAGS = $(OPT) $(ARCH) -std=gnu11 -fPIC -fopenmp $(WARN) $(BLAS_CFLAGS) $(DNNL_CFLAGS) \
             -I$(LUA_INC) -Iengine $(CFLAGS)
LDLIBS  := $(BLAS_LIBS) $(DNNL_LIBS) -lpng -ljpeg -lz -lgomp -lm

ENGINE_SRCS := $(wildcard engine/*.c) $(wildcard engine/cpu/*.c) $(wildcard engine/io/*.c)
# CUDA: native code for sm_90 (H100, H200) and sm_80 (A100), plus sm_90 PTX
# that the driver compiles for newer GPUs.  CUDA_ARCH='-arch=sm_90' builds
# one target only (faster).  The kernels' host code is C++ (cuBLAS, CUB).
CUDA_ARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS  ?= -O3
# EMU=1 (make test-cuda-emu, in build-emu/) compiles the same kernels with
# g++ against the host emulator in emu/ instead of nvcc, cuBLAS and CUDA.
EMU        ?= 0
ifeq ($(EMU),1)
ifneq ($(wildcard .git),)
$(error EMU=1 builds in build-emu/ only (its objects are not nvcc's): run make emu-build or make test-cuda-emu)
endif
override CUDA := 1
ENGINE_SRCS := $(filter-out engine/cuda_none.c,$(ENGINE_SRCS))
CUDA_OBJS   := $(CUDA_SRCS:%.cu=build/%.o) build/emu/runtime.o build/emu/cublas.o
LDLIBS      += -lstdc++
else ifeq ($(CUDA),1)
ENGINE_SRCS := $(filter-out engine/cuda_none.c,$(ENGINE_SRCS))
CUDA_HOME   := $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_OBJS   := $(CUDA_SRCS:%.cu=build/%.o)
LDLIBS      += -L$(CUDA_HOME)/lib64 -lcublas -lcudart -Wl,-rpath,$(CUDA_HOME)/lib64 -lstdc++
endif
# The rllua program (script runner, REPL, completion) links the bindings;
# lib/rl/core.so is the bindings alone.
MAIN_SRCS   := $(wildcard bindings/main.c bindings/repl.c bindings/complete.c)
BIND_SRCS   := $(filter-out $(MAIN_SRCS),$(wildcard bindings/*.c))

ENGINE_OBJS := $(ENGINE_SRCS:%.c=build/%.o) $(CUDA_OBJS)
BIND_OBJS   := $(BIND_SRCS:%.c=build/%.o)

all: rllua lib/rl/core.so lua/rl/cdoc.lua
	@echo "built rllua and lib/rl/core.so (CUDA backend: $(if $(filter 1,$(CUDA)),on,off); oneDNN: $(if $(filter 1,$(DNNL)),on,off))"

rllua: $(MAIN_SRCS:%.c=build/%.o) $(BIND_OBJS) $(ENGINE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -llua5.4 -lreadline $(LDLIBS) -Wl,-E

# rl.help's text for the C-bound functions: their comments in bindings/
lua/rl/cdoc.lua: bindings/gen_cdoc.lua $(wildcard bindings/*.c) engine/backend.h
	lua5.4 bindings/gen_cdoc.lua $@ $(filter %.c,$^)

lib/rl/core.so: $(BIND_OBJS) $(ENGINE_OBJS) bindings/core.map
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -Wl,--version-script=bindings/core.map -o $@ $(filter %.o,$^) $(LDLIBS)

build/%.o: %.c $(wildcard engine/*.h engine/cpu/*.h engine/io/*.h bindings/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The objects that read RL_HAVE_DNNL are rebuilt when DNNL changes: the
# stamp holds the setting and is rewritten only when it differs.
build/dnnl.stamp: FORCE
	@mkdir -p build
	@echo '$(DNNL)' | cmp -s - $@ || echo '$(DNNL)' > $@
build/engine/cpu/cpu_dnnl.o build/engine/cpu/cpu_tune.o build/bindings/cpu.o: build/dnnl.stamp
FORCE:

ifeq ($(EMU),1)
# The emulator's kernels: each .cu (and .cuh, which the .cu files include
# from their own directory) rewritten by emu/cu2cpp.lua into build/kernels/.
EMU_CXXFLAGS = -O1 -g -std=c++17 -fPIC -Wall -Wno-unused-function -Wno-unknown-pragmas \
               -DRL_CUDA_EMU $(BLAS_CFLAGS) -Iemu/include -Iemu -Iengine
EMU_CUH := $(patsubst kernels/%,build/kernels/%,$(wildcard kernels/*.cuh))
build/kernels/%.cuh: kernels/%.cuh emu/cu2cpp.lua
	@mkdir -p $(dir $@)
	lua5.4 emu/cu2cpp.lua $< $@
.PRECIOUS: build/kernels/%.cuh
build/kernels/%.o: kernels/%.cu emu/cu2cpp.lua $(EMU_CUH) \
                   $(wildcard engine/*.h emu/*.h emu/include/*.h emu/include/cub/device/*.cuh)
	@mkdir -p $(dir $@)
	lua5.4 emu/cu2cpp.lua $< build/kernels/$*.emu.cpp
	g++ $(EMU_CXXFLAGS) -c -o $@ build/kernels/$*.emu.cpp
build/emu/%.o: emu/%.cpp $(wildcard engine/*.h emu/*.h emu/include/*.h emu/include/cub/device/*.cuh)
	@mkdir -p $(dir $@)
	g++ $(EMU_CXXFLAGS) -c -o $@ $<
# (it includes kernels/cuda_mma.cuh, the kernels' mma wrapper, as is)
build/emu/selftest: emu/selftest.cu emu/cu2cpp.lua build/emu/runtime.o build/emu/cublas.o \
                    kernels/cuda_mma.cuh
	lua5.4 emu/cu2cpp.lua $< build/emu/selftest.emu.cpp
	g++ $(EMU_CXXFLAGS) -Ikernels -o $@ build/emu/selftest.emu.cpp build/emu/runtime.o build/emu/cublas.o \
	  $(BLAS_LIBS)
else
build/kernels/%.o: kernels/%.cu $(wildcard engine/*.h engine/io/*.h kernels/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -std=c++17 -Xcompiler -fPIC -Xcompiler -Wall -Iengine $(CUDA_ARCH) -c -o $@ $<
endif

# Busted runs every spec with the handler in spec/summary.lua, whose last
# line is "N passed, N failed".
BUSTED := lua5.4 $(firstword $(shell command -v busted 2>/dev/null) /usr/bin/busted)
# The specs keep the convolution choices they measure (rl.backends.cpu) in
# build/, away from the user's cache: choices timed under a test run's load
# are no guide for real runs.
# One busted process per spec file, TEST_JOBS at a time, longest first
# (spec/run.sh): most of the slow specs' time is spent waiting on
# subprocesses, which overlap.  make test TEST_JOBS=1 runs them one by one;
# make test TEST_SPECS=spec/ops_spec.lua runs one file.  Each file's output
# is kept in build/spec-logs/.
TEST_JOBS ?= 2
TEST_SPECS ?= spec
test: all
	@RL_EXPECT_ONEDNN=$(DNNL) RL_CACHE_DIR=$(CURDIR)/build/test-cache bash spec/run.sh $(TEST_JOBS) build/spec-logs \
	  $(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' --cpath='./lib/?.so' -o spec/summary.lua \
	  -- $(TEST_SPECS)

# The CUDA specs on their own; RL_REQUIRE_CUDA makes them fail (instead of
# being skipped) when no CUDA device can be used.
test-cuda: all
	@RL_REQUIRE_CUDA=1 RL_CACHE_DIR=$(CURDIR)/build/test-cache $(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' \
	  --cpath='./lib/?.so' -o spec/summary.lua spec/cuda_spec.lua

# AutoAttack against torchattacks at the issue's size: 500 Fashion-MNIST test
# images, fra31's settings (make test runs the same spec smaller).  CI runs
# it after make test.
crosscheck-aa: all
	@RL_AA_FULL=1 $(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' \
	  --cpath='./lib/?.so' -o spec/summary.lua spec/autoattack_crosscheck_natural_spec.lua \
	  spec/autoattack_crosscheck_at_spec.lua

bench: all
	./rllua scripts/bench_core.lua

# ---- sanitizers: make test-asan ------------------------------------------

# Every spec on an ASan+UBSan build that stops at the first report.  The
# build lives in build-asan/ (its own build/, rllua and lib/rl/core.so) so it
# never clobbers the normal one: this Makefile runs again there, over
# symlinks to the sources, with CUDA off (no kernel could run under ASan).
#
# busted runs under the stock, uninstrumented lua5.4, and the ASan runtime
# must be the first library of a process, so lua5.4 starts through ld.so
# --preload: unlike LD_PRELOAD it is not inherited, so python3 (torch),
# /bin/sh and coreutils run as usual.  The specs' ./rllua is build-asan's
# (RLLUA_BIN, linked with the runtime) and their stock lua5.4 subprocesses
# preload it the same way (RL_LUA).
#
# ASan and LSan reports go to files under build-asan/reports (log_path), so
# one in a subprocess whose exit status a spec expects to be non-zero still
# fails the target.  UBSan ignores log_path: its reports go to stderr and end
# the process with status 86, which no spec expects.  Leak detection stays
# on: the engine frees what it allocates, and Lua's state stays reachable
# until exit.  use_tls=0: gcc 12's LSan misreads the dynamic TLS of an
# OpenMP worker in a dlopen'ed module (core.so under lua5.4) and its tracer
# crashes at exit ("Tracer caught signal 11"); the engine keeps no heap
# pointer only in thread-locals.  Three suppressions, none ours: ld.so's
# --preload leaks the preloaded library's name; libgomp holds its thread
# pool only in thread-locals, which use_tls=0 no longer scans; and glibc
# keeps the message of a failed dlopen (oneDNN probing for a profiler's
# library) in a buffer of the thread's that LSan cannot see.
ASAN_DIR   := build-asan
# The AutoAttack cross-check (tagged #crosscheck) is left out: it runs the
# engine's kernels the other specs run, for minutes, and torch besides; so
# is the real Slurm cluster's table (#slurm), whose jobs run the table
# scripts the other specs run.
ASAN_SPECS ?= spec# or one file: make test-asan ASAN_SPECS=spec/ops_spec.lua
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_LIB   := $(shell $(CC) -print-file-name=libasan.so)
ASAN_LUA   := /lib64/ld-linux-x86-64.so.2 --preload $(ASAN_LIB) /usr/bin/lua5.4
ASAN_LOG   := $(CURDIR)/$(ASAN_DIR)/reports/report
ASAN_ENV   := ASAN_OPTIONS=log_path=$(ASAN_LOG):detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
              LSAN_OPTIONS=suppressions=$(CURDIR)/$(ASAN_DIR)/lsan.supp:print_suppressions=0:use_tls=0 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 \
              RL_CACHE_DIR=$(CURDIR)/$(ASAN_DIR)/cache RLLUA_BIN=./$(ASAN_DIR)/rllua RL_LUA='$(ASAN_LUA)' \
              RL_EXPECT_ONEDNN=$(DNNL)

asan-build:
	@mkdir -p $(ASAN_DIR)
	@for d in engine bindings lua; do ln -sfn ../$$d $(ASAN_DIR)/$$d; done
	@$(MAKE) --no-print-directory -C $(ASAN_DIR) -f ../Makefile CUDA=0 OPT='-O1 -g' \
	  CFLAGS='$(ASAN_FLAGS)' LDFLAGS='$(ASAN_FLAGS)' all

test-asan: asan-build
	@rm -rf $(ASAN_DIR)/reports && mkdir -p $(ASAN_DIR)/reports
	@printf '%s\n' 'leak:add_name_to_object' 'leak:libgomp.so' 'leak:_dlerror_run' > $(ASAN_DIR)/lsan.supp
	@$(ASAN_ENV) $(ASAN_LUA) $(firstword $(shell command -v busted 2>/dev/null) /usr/bin/busted) \
	  --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' --cpath='./$(ASAN_DIR)/lib/?.so' \
	  --exclude-tags=crosscheck,slurm -o spec/summary.lua $(ASAN_SPECS); rc=$$?; \
	if ls $(ASAN_DIR)/reports/report* >/dev/null 2>&1; then \
	  cat $(ASAN_DIR)/reports/report*; echo "test-asan: sanitizer reports above"; exit 1; fi; \
	exit $$rc

asan-clean:
	rm -rf $(ASAN_DIR)
clean: asan-clean
.PHONY: asan-build asan-clean

# ---- the CUDA emulator: make test-cuda-emu ----------------------------------

# kernels/ compiled by g++ against emu/ (a host emulator of the CUDA runtime,
# cuBLAS's GEMMs and cub's sort) in build-emu/, over symlinks as for ASan;
# then emu/selftest.cu's checks of the emulator itself, and
# spec/cuda_spec.lua against that build.  It needs no GPU and runs the real
# kernel sources; what a pass shows, and what only a GPU can, is written at
# the top of emu/runtime.cpp.
EMU_DIR := build-emu

emu-build:
	@mkdir -p $(EMU_DIR)
	@for d in engine bindings lua kernels emu; do ln -sfn ../$$d $(EMU_DIR)/$$d; done
	@$(MAKE) --no-print-directory -C $(EMU_DIR) -f ../Makefile EMU=1 all build/emu/selftest

# The spec runs twice: blocks and threads in their usual order, then last
# first (RL_EMU_ORDER=reverse), so that a race between them shows.
EMU_SPEC = RL_REQUIRE_CUDA=1 RL_CACHE_DIR=$(CURDIR)/$(EMU_DIR)/cache RLLUA_BIN=./$(EMU_DIR)/rllua \
	  $(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' \
	  --cpath='./$(EMU_DIR)/lib/?.so' -o spec/summary.lua

# Then the experiment, resume, evaluation and script specs with every run
# on the emulated GPU (RL_DEVICE=cuda): training, resuming after a kill,
# the attacks and the measurements the table scripts run there.
test-cuda-emu: emu-build
	@$(EMU_DIR)/build/emu/selftest
	@echo "spec/cuda_spec.lua on the emulator, usual order:"
	@RL_EMU_ORDER=forward $(EMU_SPEC) spec/cuda_spec.lua
	@echo "spec/cuda_spec.lua on the emulator, blocks and threads last first:"
	@RL_EMU_ORDER=reverse $(EMU_SPEC) spec/cuda_spec.lua
	@echo "experiments and table scripts on the emulated GPU:"
	@RL_DEVICE=cuda $(EMU_SPEC) spec/experiment_spec.lua spec/crash_resume_spec.lua \
	  spec/evaluate_spec.lua spec/scripts_spec.lua

# cuda_spec alone on an emulator build that is there already, in the order
# RL_EMU_ORDER gives (scripts/gpu_check.sh's emulator mode runs it).
emu-cuda-spec:
	@$(EMU_SPEC) spec/cuda_spec.lua

# scripts/gpu_check.sh end to end on the emulator, small (CNN002, batch 2,
# one step, two layers of bench_conv) and slow (limits times 3): whether
# each of its steps runs and its summary reads, before a
# GPU session spends its few minutes of device time on it.  The PyTorch
# columns stay empty here (no CUDA PyTorch); output in build-emu/gpu_check_out.
gpu-check-emu: emu-build
	@GPU_CHECK_EMU=$(EMU_DIR) OUT=$(CURDIR)/$(EMU_DIR)/gpu_check_out GPU_CHECK_MODELS=CNN002 \
	  GPU_CHECK_BATCH=2 GPU_CHECK_STEPS=1 GPU_CHECK_CONV_LAYERS=1,3 GPU_CHECK_SCALE=3 \
	  GPU_CHECK_BUDGET=1800 bash scripts/gpu_check.sh

emu-clean:
	rm -rf $(EMU_DIR)
clean: emu-clean
.PHONY: emu-build emu-cuda-spec test-cuda-emu gpu-check-emu emu-clean

# ---- fuzzing: make fuzz FUZZ_SECONDS=N ------------------------------------
# libFuzzer targets, one per reader (fuzz/README.md): the engine is built
# again with clang, ASan and UBSan into build/fuzz/, each harness links it
# directly (no Lua), the seeds are generated by fuzz/seeds.lua (run by
# ./rllua), the inputs under fuzz/regressions/ are replayed, then every
# target fuzzes for FUZZ_SECONDS, FUZZ_JOBS at a time.  Any crash, leak,
# timeout or out-of-memory fails the target.
FUZZ_SECONDS ?= 30
FUZZ_JOBS    ?= $(shell nproc)
FUZZ_CC      ?= clang-14
FUZZ_DIR     := build/fuzz
FUZZ_TARGETS := safetensors idx idx_gz cifar svhn svhn_z png jpeg folder json
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
# No -fopenmp: the pragmas are ignored and the readers run serially (what
# fuzzing wants; clang's OpenMP runtime is not in make deps).
# fuzz/include/omp.h declares the engine's few omp_* calls; libgomp
# answers them.
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -std=gnu11 $(WARN) -Wno-unknown-pragmas \
                $(BLAS_CFLAGS) -Iengine -Ifuzz/include $(FUZZ_SAN)
FUZZ_LIBS    := $(BLAS_LIBS) -lpng -ljpeg -lz $(shell $(CC) -print-file-name=libgomp.so) -lm
FUZZ_ENGINE  := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard engine/*.c engine/cpu/*.c engine/io/*.c))

# The engine is instrumented for coverage (fuzzer-no-link) as well.
$(FUZZ_DIR)/obj/%.o: %.c $(wildcard engine/*.h engine/cpu/*.h engine/io/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libengine.a: $(FUZZ_ENGINE)
	@rm -f $@
	ar rcs $@ $^

# fuzz_<target> from fuzz/<source>.c with extra flags: $(1) target, $(2) source, $(3) flags.
define FUZZ_HARNESS
$(FUZZ_DIR)/bin/fuzz_$(1): fuzz/$(2).c $(FUZZ_DIR)/obj/fuzz/common.o $(FUZZ_DIR)/libengine.a
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(3) -o $$@ $$< $(FUZZ_DIR)/obj/fuzz/common.o \
	  $(FUZZ_DIR)/libengine.a $(FUZZ_LIBS)
endef
$(eval $(call FUZZ_HARNESS,safetensors,safetensors,))
$(eval $(call FUZZ_HARNESS,idx,idx,))
$(eval $(call FUZZ_HARNESS,idx_gz,idx,-DFUZZ_GZIP))
$(eval $(call FUZZ_HARNESS,cifar,cifar,))
$(eval $(call FUZZ_HARNESS,svhn,svhn,))
$(eval $(call FUZZ_HARNESS,svhn_z,svhn,-DFUZZ_COMPRESS))
$(eval $(call FUZZ_HARNESS,png,image,))
$(eval $(call FUZZ_HARNESS,jpeg,image,))
$(eval $(call FUZZ_HARNESS,folder,folder,))
$(eval $(call FUZZ_HARNESS,json,json,))

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/bin/fuzz_%)
.PHONY: fuzz-build

fuzz: all fuzz-build
	@rm -rf $(FUZZ_DIR)/seeds
	./rllua fuzz/seeds.lua $(FUZZ_DIR)/seeds $(FUZZ_TARGETS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh $(FUZZ_DIR) $(FUZZ_TARGETS)


APT_PKGS := build-essential python3 lua5.4 liblua5.4-dev lua-busted libopenblas-dev libopenblas-openmp-dev libdnnl-dev libpng-dev \
            libjpeg62-turbo-dev zlib1g-dev libreadline-dev gnuplot-nox \
            dataset-fashion-mnist python3-torch python3-numpy clang-14 libclang-rt-14-dev \
            python3-pip python3-scipy python3-tqdm python3-requests chromium \
            slurmctld slurmd slurm-client munge
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
# torchattacks, pinned, for the AutoAttack cross-check (its dependencies are
# the Debian packages above, hence --no-deps); a path to the wheel works too.
TORCHATTACKS ?= torchattacks==3.5.1
deps:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_PKGS)
	$(SUDO) /usr/bin/python3 -m pip install --no-deps $(TORCHATTACKS) || \
	  $(SUDO) /usr/bin/python3 -m pip install --break-system-packages --no-deps $(TORCHATTACKS) || \
	  echo 'make deps: torchattacks could not be installed; the specs that compare with it will say so (pending)'

# Lua's own layout, so stock lua5.4 finds rl under PREFIX=/usr/local too.
install: all
	install -d $(PREFIX)/bin $(PREFIX)/share/lua/5.4/rl/optim $(PREFIX)/lib/lua/5.4/rl
	install -m 755 rllua $(PREFIX)/bin/rllua
	install -m 644 lua/rl/*.lua $(PREFIX)/share/lua/5.4/rl/
	install -d $(PREFIX)/share/lua/5.4/rl/autoattack
	install -m 644 lua/rl/optim/*.lua $(PREFIX)/share/lua/5.4/rl/optim/
	install -m 644 lua/rl/autoattack/*.lua $(PREFIX)/share/lua/5.4/rl/autoattack/
	install -m 755 lib/rl/core.so $(PREFIX)/lib/lua/5.4/rl/core.so

clean:
	rm -rf build rllua lib lua/rl/cdoc.lua

.PHONY: all test test-cuda test-asan crosscheck-aa fuzz bench deps install clean FORCE
