# gnuplot weights/logs/dropout-low-2026-12-06/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt) of
# three complete 5,000-step cosines of the shipped recipe, seed 2, one
# thread each, that differ only in the dropout rate: 0.1 (the budget
# study's s5000), 0.05 and 0 (this folder). Left: the parameters and their
# average; right: the difference to dropout 0.1 at each evaluation.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/dropout-low-2026-12-06/curves.png'
set datafile separator ','
set multiplot layout 1,2
set grid
set key top right
set xlabel 'tokens (M)'
set xrange [0:10.5]
ref = 'weights/logs/budget-2026-12-06/s5000/train.csv'
d05 = 'weights/logs/dropout-low-2026-12-06/dp0.05/train.csv'
d0 = 'weights/logs/dropout-low-2026-12-06/dp0/train.csv'
tok(s) = s * 2048 / 1e6
set ylabel 'valid loss'
set yrange [3.7:5.0]
set title 'validation loss'
plot ref every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 1 title 'dropout 0.1: parameters', \
     ref every ::1 using (tok($1)):7 with lines lw 2 lc 1 title 'dropout 0.1: average', \
     d05 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 2 title 'dropout 0.05: parameters', \
     d05 every ::1 using (tok($1)):7 with lines lw 2 lc 2 title 'dropout 0.05: average', \
     d0 every ::1 using (tok($1)):3 with lines lw 1 dt 2 lc 3 title 'dropout 0: parameters', \
     d0 every ::1 using (tok($1)):7 with lines lw 2 lc 3 title 'dropout 0: average'
set ylabel 'valid loss minus dropout 0.1 (parameters)'
set yrange [*:*]
set title 'against dropout 0.1, same step'
plot '< paste -d, weights/logs/budget-2026-12-06/s5000/train.csv weights/logs/dropout-low-2026-12-06/dp0.05/train.csv' \
         every ::1 using (tok($1)):($10 - $3) with linespoints lw 2 lc 2 title 'dropout 0.05', \
     '< paste -d, weights/logs/budget-2026-12-06/s5000/train.csv weights/logs/dropout-low-2026-12-06/dp0/train.csv' \
         every ::1 using (tok($1)):($10 - $3) with linespoints lw 2 lc 3 title 'dropout 0', \
     0 with lines lc 0 notitle
unset multiplot
