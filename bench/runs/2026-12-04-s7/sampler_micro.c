#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "sampler.h"
int main(void){
  enum{V=8192,N=20000}; static float l[V]; srand(1);
  for(int i=0;i<V;i++) l[i]=(float)rand()/RAND_MAX*8-4;
  sampler_params p; sampler_params_default(&p); p.temperature=1; p.seed=3;
  sampler s; sampler_init(&s,&p); float lp; long acc=0;
  struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
  for(int i=0;i<N;i++) acc+=sampler_sample(&s,l,V,NULL,0,&lp);
  clock_gettime(CLOCK_MONOTONIC,&b);
  printf("%.2f us/sample (checksum %ld)\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/1e3/N,acc);
  sampler_free(&s); return 0;}
