# rllua - build, test and install.
#
#   make deps            Debian packages the build, the specs and the table
#                        scripts need (apt-get; run as root or with sudo)
#   make                 ./rllua and lib/rl/core.so (the engine as a Lua module)
#   make test            every spec; the last line reads "N passed, N failed"
#   make test-cuda       spec/cuda_spec.lua (CPU vs CUDA); fails without a GPU
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
ALL_CFLAGS = $(OPT) $(ARCH) -std=gnu11 -fPIC -fopenmp $(WARN) $(BLAS_CFLAGS) \
             -I$(LUA_INC) -Iengine $(CFLAGS)
LDLIBS  := $(BLAS_LIBS) -lpng -ljpeg -lz -lgomp -lm

ENGINE_SRCS := $(wildcard engine/*.c) $(wildcard engine/cpu/*.c) $(wildcard engine/io/*.c)
# CUDA: native code for sm_90 (H100, H200) and sm_80 (A100), plus sm_90 PTX
# that the driver compiles for newer GPUs.  CUDA_ARCH='-arch=sm_90' builds
# one target only (faster).  The kernels' host code is C++ (cuBLAS, CUB).
CUDA_ARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS  ?= -O3
ifeq ($(CUDA),1)
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

all: rllua lib/rl/core.so
	@echo "built rllua and lib/rl/core.so (CUDA backend: $(if $(filter 1,$(CUDA)),on,off))"

rllua: $(MAIN_SRCS:%.c=build/%.o) $(BIND_OBJS) $(ENGINE_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -llua5.4 -lreadline $(LDLIBS) -Wl,-E

lib/rl/core.so: $(BIND_OBJS) $(ENGINE_OBJS) bindings/core.map
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -Wl,--version-script=bindings/core.map -o $@ $(filter %.o,$^) $(LDLIBS)

build/%.o: %.c $(wildcard engine/*.h engine/cpu/*.h engine/io/*.h bindings/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/kernels/%.o: kernels/%.cu $(wildcard engine/*.h engine/io/*.h kernels/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -std=c++17 -Xcompiler -fPIC -Xcompiler -Wall -Iengine $(CUDA_ARCH) -c -o $@ $<

# Busted runs every spec with the handler in spec/summary.lua, whose last
# line is "N passed, N failed".
BUSTED := lua5.4 $(firstword $(shell command -v busted 2>/dev/null) /usr/bin/busted)
test: all
	@$(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' --cpath='./lib/?.so' \
	  -o spec/summary.lua spec

# The CUDA specs on their own; RL_REQUIRE_CUDA makes them fail (instead of
# being skipped) when no CUDA device can be used.
test-cuda: all
	@RL_REQUIRE_CUDA=1 $(BUSTED) --lpath='./lua/?.lua;./lua/?/init.lua;./spec/?.lua' \
	  --cpath='./lib/?.so' -o spec/summary.lua spec/cuda_spec.lua

bench: all
	./rllua scripts/bench_core.lua

# ---- sanitizers: make test-asan ------------------------------------------

# ---- fuzzing: make fuzz FUZZ_SECONDS=N ------------------------------------

APT_PKGS := build-essential python3 lua5.4 liblua5.4-dev lua-busted libopenblas-dev libopenblas-openmp-dev libpng-dev \
            libjpeg62-turbo-dev zlib1g-dev libreadline-dev gnuplot-nox \
            dataset-fashion-mnist python3-torch python3-numpy clang libclang-rt-14-dev
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
deps:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_PKGS)

# Lua's own layout, so stock lua5.4 finds rl under PREFIX=/usr/local too.
install: all
	install -d $(PREFIX)/bin $(PREFIX)/share/lua/5.4/rl/optim $(PREFIX)/lib/lua/5.4/rl
	install -m 755 rllua $(PREFIX)/bin/rllua
	install -m 644 lua/rl/*.lua $(PREFIX)/share/lua/5.4/rl/
	$(if $(wildcard lua/rl/optim/*.lua),install -m 644 lua/rl/optim/*.lua $(PREFIX)/share/lua/5.4/rl/optim/)
	install -m 755 lib/rl/core.so $(PREFIX)/lib/lua/5.4/rl/core.so

clean:
	rm -rf build rllua lib

.PHONY: all test test-cuda test-asan fuzz bench deps install clean
