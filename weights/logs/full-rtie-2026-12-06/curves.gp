# gnuplot weights/logs/full-rtie-2026-12-06/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against steps (2,048 tokens each in all three runs). Budget B (both
# cores, 100 minutes), the shipped recipe with the weight average, seed 2:
# the shipped model's run (full-ema-2026-12-05), the same with
# --r-tie 30 (this run), and the first 21 minutes of the same at context
# 128 (full-ctx128-2026-12-06, stopped). Left: the average; right: the
# difference from the shipped run at equal steps.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-rtie-2026-12-06/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'step'
set grid
set key top right
set title 'validation loss of the weight average'
set ylabel 'valid loss'
set yrange [3.5:5.0]
plot 'weights/logs/full-ema-2026-12-05/train.csv' every ::1 using 1:7 with lines lw 2 lc 1 title 'shipped (r-tie off)', \
     'weights/logs/full-rtie-2026-12-06/train.csv' every ::1 using 1:7 with lines lw 2 lc 2 title '--r-tie 30', \
     'weights/logs/full-ctx128-2026-12-06/train.csv' every ::1 using 1:7 with lines lw 2 lc 4 title 'context 128 (stopped)'
set title 'difference from the shipped run, equal steps'
set ylabel 'valid loss - shipped run (nats)'
set yrange [-0.1:0.03]
# each run's rows joined on the step to the shipped run's row
# (columns 1-7 the shipped run's, 8-14 the other's)
joined(run) = "< awk -F, 'NR==FNR{a[$1]=$0; next} ($1 in a){print a[$1] \",\" $0}' " . \
    "weights/logs/full-ema-2026-12-05/train.csv weights/logs/" . run . "/train.csv"
plot joined('full-rtie-2026-12-06') \
         using 1:($14-$7) with lines lw 2 lc 2 title '--r-tie 30: average', \
     '' using 1:($10-$3) with lines lw 1 dt 2 lc 2 title '--r-tie 30: parameters', \
     joined('full-ctx128-2026-12-06') \
         using 1:($14-$7) with lines lw 2 lc 4 title 'context 128: average', \
     '' using 1:($10-$3) with lines lw 1 dt 2 lc 4 title 'context 128: parameters', \
     0 with lines lc 0 notitle
unset multiplot
