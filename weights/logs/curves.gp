# gnuplot -c weights/logs/curves.gp RUN REF RUN_LABEL REF_LABEL (from the
# repository root): two full runs side by side, drawn to RUN/curves.png.
# RUN and REF are run directories (train.csv and train.log in each, as
# weights/train.sh writes them); the labels name what differs, e.g.
# 'weight decay 0.6' 'weight decay 0.3 (shipped)'.
# Left: validation loss (nats per token, first 65,536 tokens of valid.txt)
# of the weight average (solid) and of the raw parameters (dashed) against
# steps; right: RUN minus REF at equal fractions of each cosine schedule
# (weights/logs/diff.sh), where both runs have the same learning
# rate. (The runs before full-wd06-2026-12-07 drew their figures with a
# copy of this script in their own directory.)
if (ARGC < 4) { print 'usage: gnuplot -c weights/logs/curves.gp RUN REF RUN_LABEL REF_LABEL'; exit status 2 }
run = ARG1; ref = ARG2
set terminal pngcairo size 1100,480 font ',10'
set output run.'/curves.png'
set datafile separator ','
set multiplot layout 1,2
set grid
set key top right
set title 'validation loss'
set xlabel 'step'
set ylabel 'valid loss'
set yrange [3.5:4.5]
plot ref.'/train.csv' every ::1 using 1:7 with lines lw 2 lc 1 title 'average, '.ARG4, \
     run.'/train.csv' every ::1 using 1:7 with lines lw 2 lc 2 title 'average, '.ARG3, \
     ref.'/train.csv' every ::1 using 1:3 with lines lw 1 dt 2 lc 1 title 'parameters, '.ARG4, \
     run.'/train.csv' every ::1 using 1:3 with lines lw 1 dt 2 lc 2 title 'parameters, '.ARG3
set title ARG3.' minus '.ARG4
set xlabel 'fraction of the schedule (equal learning rates)'
set ylabel 'valid loss difference (nats)'
set autoscale y
set datafile separator whitespace
# diff.sh's columns: 3 "(fraction", 14 the average's difference, 20 the parameters'
diffs = '< sh weights/logs/diff.sh '.run.' '.ref
plot diffs using (real(substr(strcol(3), 2, 99))):14 with lines lw 2 lc 2 title 'average', \
     '' using (real(substr(strcol(3), 2, 99))):20 with lines lw 1 dt 2 lc 2 title 'parameters', \
     0 with lines lc 0 notitle
unset multiplot
