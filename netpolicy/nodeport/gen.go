package nodeport

// Regenerating the BPF objects needs clang, llvm and libbpf-dev (Debian:
// apt-get install -y clang llvm libbpf-dev linux-libc-dev). The generated
// *_bpfel.o / *_bpfeb.o files are committed, so a normal build needs none.
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -target bpfel,bpfeb -cflags "-O2 -g -Wall -Werror" nodePort ../bpf/nodeport.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -I/usr/include/arm-linux-gnueabihf
