# gnuplot weights/logs/full-geglu-2026-12-07/curves.gp (from the
# repository root): validation loss (nats/token, first 65,536 tokens of
# valid.txt) against steps (2,048 tokens each). Budget B (both cores, 100
# minutes), the shipped recipe with the weight average, seed 2: the shipped
# model's run (full-ema-2026-12-05, gelu MLP, d_ff 1024) and the same with
# the GEGLU feed-forward at d_ff 672 (this run). Left: the average; right:
# the difference from the shipped run at equal steps.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-geglu-2026-12-07/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'step'
set grid
set key top right
set title 'validation loss of the weight average'
set ylabel 'valid loss'
set yrange [3.5:5.0]
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using 1:7 with lines lw 2 lc 1 title 'shipped (gelu, d\_ff 1024)', \
     'weights/logs/full-geglu-2026-12-07/train.csv' every ::1 using 1:7 with lines lw 2 lc 2 title 'geglu, d\_ff 672'
set title 'difference from the shipped run, equal steps'
set ylabel 'valid loss - shipped run (nats)'
set yrange [-0.1:0.05]
# the run's rows joined on the step to the shipped run's row
# (columns 1-7 the shipped run's, 8-14 this run's)
joined = "< awk -F, 'NR==FNR{a[$1]=$0; next} ($1 in a){print a[$1] \",\" $0}' " . \
    "weights/logs/full-ema-2026-12-05/train.csv weights/logs/full-geglu-2026-12-07/train.csv"
plot joined using 1:($14-$7) with lines lw 2 lc 2 title 'geglu: average', \
     '' using 1:($10-$3) with lines lw 1 dt 2 lc 2 title 'geglu: parameters', \
     0 with lines lc 0 notitle
unset multiplot
