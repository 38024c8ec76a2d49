# gnuplot weights/logs/full-dropout05-2026-12-07/curves.gp (from the repository
# root): the shipped command (full-ema999-2026-12-07, weight average from step
# 0 with decay 0.999, dropout 0.1) and this run (the same with dropout 0.05),
# same kind of machine, seed and data order, 100 minutes on both cores each.
# Left: validation loss (nats per token, first 65,536 tokens of valid.txt) of
# the weight average and of the raw parameters against steps; right: this run
# minus the shipped run at equal fractions of each schedule
# (full-rerun-2026-12-07/diff.sh).
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-dropout05-2026-12-07/curves.png'
set datafile separator ','
set multiplot layout 1,2
set grid
set key top right
set title 'validation loss'
set xlabel 'step'
set ylabel 'valid loss'
set yrange [3.5:4.5]
plot 'weights/logs/full-ema999-2026-12-07/train.csv' every ::1 using 1:7 with lines lw 2 lc 1 title 'average, dropout 0.1 (shipped)', \
     'weights/logs/full-dropout05-2026-12-07/train.csv' every ::1 using 1:7 with lines lw 2 lc 2 title 'average, dropout 0.05 (this run)', \
     'weights/logs/full-ema999-2026-12-07/train.csv' every ::1 using 1:3 with lines lw 1 dt 2 lc 1 title 'parameters (shipped run)', \
     'weights/logs/full-dropout05-2026-12-07/train.csv' every ::1 using 1:3 with lines lw 1 dt 2 lc 2 title 'parameters (this run)'
set title 'this run minus the shipped run at equal fractions of the schedule'
set xlabel 'fraction of the schedule'
set ylabel 'valid loss difference (nats)'
set yrange [-0.05:0.08]
set datafile separator whitespace
# diff.sh's columns: 3 "(fraction", 14 the average's difference, 20 the parameters'
diffs = '< sh weights/logs/full-rerun-2026-12-07/diff.sh weights/logs/full-dropout05-2026-12-07 weights/logs/full-ema999-2026-12-07'
plot diffs using (real(substr(strcol(3), 2, 99))):14 with lines lw 2 lc 2 title 'average', \
     '' using (real(substr(strcol(3), 2, 99))):20 with lines lw 1 dt 2 lc 2 title 'parameters', \
     0 with lines lc 0 notitle
unset multiplot
