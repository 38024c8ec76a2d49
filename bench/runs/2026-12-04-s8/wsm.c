/* wsum bandwidth probe: 64 seqs x 6 layers of V [256][256], positions 1..256 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "kern.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int f16=argc>1?atoi(argv[1]):0; int NS=argc>2?atoi(argv[2]):384;
  const int L=256,d=256,H=4,dh=64;
  size_t es=f16?2:4;
  char *V=aligned_alloc(64,(size_t)NS*L*d*es); memset(V,0,(size_t)NS*L*d*es);
  for(size_t i=0;i<(size_t)NS*L*d*es/4;i++) ((uint32_t*)V)[i]=f16?0x3c003c00u:0x3f800000u;
  float *A=malloc(sizeof(float)*H*L); for(int i=0;i<H*L;i++)A[i]=1.0f/(1+i%7);
  float y[256]; double bytes=0, t0=now(), t; kern_wsum_fn w=kern_wsum(); int it=0; float sink=0;
  do{ for(int p=1;p<=L;p+=8){ for(int s=0;s<NS;s++){ w(p,d,dh,A,L,V+(size_t)s*L*d*es,d,f16,y); sink+=y[3]; bytes+=(double)p*d*es;} } it++; } while((t=now()-t0)<2);
  printf("f16=%d NS=%d: %.1f GB/s  (%g)\n",f16,NS,bytes/t/1e9,sink>0);
  return 0;}
