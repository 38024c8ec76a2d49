# gnuplot weights/logs/wdrop-2026-12-06/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against steps (2,048 tokens each) of two complete 8,433-step cosines of
# the shipped recipe, seed 2: without word dropout (the budget study's
# s8433, one thread) and with word dropout 0.1 (this run, two shards).
# Left: both curves; right: the difference at equal steps.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/wdrop-2026-12-06/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'step'
set grid
set xrange [0:8500]
set key top right
set title 'validation loss, 8,433-step cosine'
set ylabel 'valid loss'
set yrange [3.6:5.0]
ref = 'weights/logs/budget-2026-12-06/s8433/train.csv'
run = 'weights/logs/wdrop-2026-12-06/train.csv'
plot ref every ::1 using 1:3 with lines lw 1 dt 2 lc 1 title 'no word dropout: parameters', \
     ref every ::1 using 1:7 with lines lw 2 lc 1 title 'no word dropout: average', \
     run every ::1 using 1:3 with lines lw 1 dt 2 lc 2 title 'word dropout 0.1: parameters', \
     run every ::1 using 1:7 with lines lw 2 lc 2 title 'word dropout 0.1: average'
set title 'word dropout 0.1 minus none, equal steps'
set ylabel 'valid loss difference (nats)'
set yrange [-0.1:0.12]
# the run's rows joined on the step to the reference's row
# (columns 1-7 the reference's, 8-14 the run's)
joined = "< awk -F, 'NR==FNR{a[$1]=$0; next} ($1 in a){print a[$1] \",\" $0}' " . ref . " " . run
plot joined using 1:($14-$7) with lines lw 2 lc 2 title 'average', \
     '' using 1:($10-$3) with lines lw 1 dt 2 lc 2 title 'parameters', \
     0 with lines lc 0 notitle
unset multiplot
